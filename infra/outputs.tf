locals {
  functions_key = one(aws_iam_access_key.functions)
  owner_key     = one(aws_iam_access_key.owner)

  # Settings both the functions and cv-owner read, in order; null values
  # are left out.
  aws_settings = [
    ["CV_BACKEND", "aws"],
    ["CV_AWS_REGION", var.region],
    ["CV_S3_BUCKET", aws_s3_bucket.cv.id],
    ["CV_S3_KEY", var.cv_key],
    ["CV_TABLE_REQUESTS", aws_dynamodb_table.this["requests"].name],
    ["CV_TABLE_OTPS", aws_dynamodb_table.this["otps"].name],
    ["CV_TABLE_LIMITS", aws_dynamodb_table.this["limits"].name],
  ]
  function_settings = concat(local.aws_settings, [
    ["CV_AWS_ACCESS_KEY_ID", try(local.functions_key.id, null)],
    ["CV_AWS_SECRET_ACCESS_KEY", try(local.functions_key.secret, null)],
    ["CV_SITE_URL", var.site_url],
    ["CV_OWNER_NAME", var.owner_name],
    ["CV_MAIL_FROM", trimspace(var.mail_from)],
    ["CV_SES_CONFIGURATION_SET", var.ses_configuration_set],
    ["CV_SMS_SENDER_ID", var.sms_sender_id],
  ])
  owner_settings = concat(local.aws_settings, [
    ["CV_AWS_ACCESS_KEY_ID", try(local.owner_key.id, null)],
    ["CV_AWS_SECRET_ACCESS_KEY", try(local.owner_key.secret, null)],
  ])

  # KEY=VALUE, the value in double quotes when it holds anything but plain
  # characters (the variables refuse quotes, backslashes, $ and
  # backticks), so Netlify's .env import and a shell read it the same.
  env_lines = {
    for name, settings in { functions = local.function_settings, owner = local.owner_settings } :
    name => join("", [
      for kv in settings : format(can(regex("^[A-Za-z0-9_./:@+,=-]*$", kv[1])) ? "%s=%s\n" : "%s=\"%s\"\n", kv[0], kv[1])
      if kv[1] != null
    ])
  }
}

output "netlify_env" {
  description = "The KEY=VALUE lines to import into the Netlify site's environment (`netlify env:import`). CV_OTP_SECRET is not among them: make it yourself, so it never enters the state."
  sensitive   = true
  value       = local.env_lines.functions
}

output "owner_env" {
  description = "The settings cv-owner needs, with the owner user's key (source them in your shell to list and erase requests)."
  sensitive   = true
  value       = local.env_lines.owner
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
