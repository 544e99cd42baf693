output "netlify_env" {
  description = "The KEY=VALUE lines to import into the Netlify site's environment (`netlify env:import`). Target netlify: the functions' settings and key (CV_OTP_SECRET is not among them: make it yourself, so it never enters the state). Target aws: the API's origin and the proxy's signing secret."
  sensitive   = true
  value       = local.on_aws ? local.env_lines.netlify_proxy : local.env_lines.functions

  precondition {
    condition = alltrue([for kv in concat(local.function_settings, local.lambda_settings) :
    kv[1] == null || !can(regex(local.unsafe_in_env, kv[1])) || !can(regex(local.unsafe_in_single_quotes, kv[1]))])
    error_message = "A setting holds a control character, or a single quote beside a double quote, backslash, $ or backtick, which a shell and Netlify's .env import would read differently."
  }

  precondition {
    condition     = try(local.env_bytes.netlify, 0) <= local.env_limit
    error_message = "The functions' environment on Netlify would be ${try(local.env_bytes.netlify, 0)} bytes (keys and values, with a CV_OTP_SECRET of two keys), over the 4 KB (4096) Lambda allows: the document list (CV_DOCUMENTS) takes ${local.documents_env_bytes} of them. Shorten the documents' titles, keys or pages in ${local.documents_file_name}, or list fewer."
  }
}

output "owner_env" {
  description = "The settings cv-owner needs, with the owner user's key: `set -a; . ./owner.env; set +a` in your shell, then list and erase requests."
  sensitive   = true
  value       = local.env_lines.owner

  precondition {
    condition     = alltrue([for kv in local.owner_settings : kv[1] == null || !can(regex(local.unsafe_in_env, kv[1])) || !can(regex(local.unsafe_in_single_quotes, kv[1]))])
    error_message = "A setting holds a control character, or a single quote beside a double quote, backslash, $ or backtick, which a shell would read differently."
  }
}

output "ses_dns_records" {
  description = "DNS records to publish for a domain identity: the verification TXT and three DKIM CNAMEs. Empty for an address identity (SES emails it a link instead)."
  value = local.ses_is_address ? [] : concat(
    [{
      name  = "_amazonses.${local.ses_identity}"
      type  = "TXT"
      value = aws_ses_domain_identity.sender[0].verification_token
    }],
    [for t in aws_ses_domain_dkim.sender[0].dkim_tokens : {
      name  = "${t}._domainkey.${local.ses_identity}"
      type  = "CNAME"
      value = "${t}.dkim.amazonses.com"
    }],
  )
}

output "function_user" {
  description = "Target netlify: the functions' IAM user; with create_access_keys = false, make its key with `aws iam create-access-key --user-name <this>`. Null on target aws, which has no user."
  value       = one(aws_iam_user.functions[*].name)
}

output "api_origin" {
  description = "Target aws: the HTTP API's origin, the Netlify site's CV_API_ORIGIN. Null on target netlify."
  value       = one(aws_apigatewayv2_api.functions[*].api_endpoint)
}

output "owner_user" {
  description = "The owner's IAM user, for cv-owner."
  value       = aws_iam_user.owner.name
}

output "bucket" {
  description = "The private bucket holding the documents."
  value       = aws_s3_bucket.cv.id
}

output "tables" {
  description = "The three DynamoDB table names."
  value       = { for role, t in aws_dynamodb_table.this : role => t.name }
}
