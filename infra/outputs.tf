locals {
  functions_key = one(aws_iam_access_key.functions)
  owner_key     = one(aws_iam_access_key.owner)

  aws_settings = compact([
    "CV_BACKEND=aws",
    "CV_AWS_REGION=${var.region}",
    local.functions_key == null ? "" : "CV_AWS_ACCESS_KEY_ID=${local.functions_key.id}",
    local.functions_key == null ? "" : "CV_AWS_SECRET_ACCESS_KEY=${local.functions_key.secret}",
    "CV_S3_BUCKET=${aws_s3_bucket.cv.id}",
    "CV_S3_KEY=${var.cv_key}",
    "CV_TABLE_REQUESTS=${aws_dynamodb_table.this["requests"].name}",
    "CV_TABLE_OTPS=${aws_dynamodb_table.this["otps"].name}",
    "CV_TABLE_LIMITS=${aws_dynamodb_table.this["limits"].name}",
  ])
}

output "netlify_env" {
  description = "The KEY=VALUE lines to import into the Netlify site's environment (`netlify env:import`). CV_OTP_SECRET is not among them: make it yourself, so it never enters the state."
  sensitive   = true
  value = join("\n", concat(local.aws_settings, compact([
    "CV_SITE_URL=${var.site_url}",
    "CV_OWNER_NAME=${var.owner_name}",
    "CV_MAIL_FROM=${trimspace(var.mail_from)}",
    var.ses_configuration_set == null ? "" : "CV_SES_CONFIGURATION_SET=${var.ses_configuration_set}",
    var.sms_sender_id == null ? "" : "CV_SMS_SENDER_ID=${var.sms_sender_id}",
  ]), [""]))
}

output "owner_env" {
  description = "The settings cv-owner needs, with the owner user's key (export them in your shell to list and erase requests)."
  sensitive   = true
  value = join("\n", concat(
    [for l in local.aws_settings : l if !startswith(l, "CV_AWS_ACCESS_KEY_ID=") && !startswith(l, "CV_AWS_SECRET_ACCESS_KEY=")],
    local.owner_key == null ? [] : ["CV_AWS_ACCESS_KEY_ID=${local.owner_key.id}", "CV_AWS_SECRET_ACCESS_KEY=${local.owner_key.secret}"],
    [""],
  ))
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
  description = "The functions' IAM user; with create_access_keys = false, make its key with `aws iam create-access-key --user-name <this>`."
  value       = aws_iam_user.functions.name
}

output "owner_user" {
  description = "The owner's IAM user, for cv-owner."
  value       = aws_iam_user.owner.name
}

output "bucket" {
  description = "The private bucket holding the CV."
  value       = aws_s3_bucket.cv.id
}

output "tables" {
  description = "The three DynamoDB table names."
  value       = { for role, t in aws_dynamodb_table.this : role => t.name }
}
