data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  partition = data.aws_partition.current.partition

  # ARNs are built from names rather than read from the resources, so the
  # policies are known at plan time and can be reviewed there.
  table_arns = {
    for role, name in var.tables :
    role => "arn:${local.partition}:dynamodb:${var.region}:${local.account}:table/${name}"
  }
  bucket_arn = "arn:${local.partition}:s3:::${var.bucket_name}"

  # "Name <address>" or a bare address.
  # As written: the functions send from it as written, and IAM compares
  # ses:FromAddress case-sensitively.
  mail_from_address = trimspace(try(regex("<([^<>]+)>\\s*$", var.mail_from)[0], var.mail_from))
  mail_from_domain  = lower(split("@", local.mail_from_address)[1])
  ses_identity      = coalesce(var.ses_identity, local.mail_from_domain)
  ses_is_address    = strcontains(local.ses_identity, "@")
  ses_identity_arn  = "arn:${local.partition}:ses:${var.region}:${local.account}:identity/${local.ses_identity}"
  ses_config_set_arn = (var.ses_configuration_set == null ? null :
  "arn:${local.partition}:ses:${var.region}:${local.account}:configuration-set/${var.ses_configuration_set}")

  # Test-only: the AWS look-alike the tests apply this to (moto) matches
  # DynamoDB, SES and SNS statements only when Resource is "*", authorises
  # a transaction as dynamodb:TransactWriteItems or TransactGetItems rather
  # than as its parts, and ignores conditions (it would read the bucket's
  # TLS-only Deny as "deny everything"). Only the tests' override file sets
  # this; AWS always gets the exact policy, which a plan test checks.
  emulator_compat = false
}

# The environment the outputs hand to Netlify and to cv-owner.
locals {
  functions_key = one(aws_iam_access_key.functions)
  owner_key     = one(aws_iam_access_key.owner)

  # Settings both the functions and cv-owner read, in order; null values
  # are left out.
  aws_settings = [
    ["CV_BACKEND", "aws"],
    ["CV_AWS_REGION", var.region],
    ["CV_S3_BUCKET", aws_s3_bucket.cv.id],
    ["CV_DOCUMENTS", local.documents_env],
    ["CV_TABLE_REQUESTS", aws_dynamodb_table.this["requests"].name],
    ["CV_TABLE_OTPS", aws_dynamodb_table.this["otps"].name],
    ["CV_TABLE_LIMITS", aws_dynamodb_table.this["limits"].name],
  ]
  # What the functions read besides the AWS settings, on either target.
  site_settings = [
    ["CV_SITE_URL", var.site_url],
    ["CV_OWNER_NAME", var.owner_name],
    ["CV_MAIL_FROM", trimspace(var.mail_from)],
    ["CV_SES_CONFIGURATION_SET", var.ses_configuration_set],
    ["CV_SMS_SENDER_ID", var.sms_sender_id],
  ]
  # Target netlify: for the site's environment, with the user's key.
  # Every function of a site sees the same environment: the owner page's
  # function reads CV_OWNER_EMAIL, where its sign-in code goes.
  function_settings = concat(local.aws_settings, [
    ["CV_AWS_ACCESS_KEY_ID", try(local.functions_key.id, null)],
    ["CV_AWS_SECRET_ACCESS_KEY", try(local.functions_key.secret, null)],
  ], local.site_settings, [["CV_OWNER_EMAIL", var.owner_email]])
  owner_settings = concat(local.aws_settings, [
    ["CV_AWS_ACCESS_KEY_ID", try(local.owner_key.id, null)],
    ["CV_AWS_SECRET_ACCESS_KEY", try(local.owner_key.secret, null)],
  ])

  # KEY=VALUE, so Netlify's .env import (dotenv) and a shell read it the
  # same: the value bare when it is plain characters, in double quotes
  # when it holds others (spaces, <>), and in single quotes, which keep
  # everything as it is, when it holds a double quote, backslash, $ or
  # backtick (CV_DOCUMENTS's JSON). No value may hold a control
  # character, nor both one of those and a single quote (CV_DOCUMENTS
  # writes ' as \u0027): the variables refuse them, and the outputs'
  # preconditions check again.
  unsafe_in_env           = "[\\x00-\\x1f\\x7f\"\\\\$`]"
  unsafe_in_single_quotes = "[\\x00-\\x1f\\x7f']"
  # Target aws: what the Netlify site needs to proxy to the API. Netlify
  # signs with one secret: the newest.
  netlify_proxy_settings = [
    ["CV_API_ORIGIN", one(aws_apigatewayv2_api.functions[*].api_endpoint)],
    ["CV_PROXY_SIGN_SECRET", try(trimspace(split(",", var.proxy_sign_secret)[0]), null)],
  ]
  env_lines = {
    for name, settings in { functions = local.function_settings, owner = local.owner_settings, netlify_proxy = local.netlify_proxy_settings } :
    name => join("", [
      for kv in settings : format(can(regex("^[A-Za-z0-9_./:@+,=-]*$", kv[1])) ? "%s=%s\n" : !can(regex(local.unsafe_in_env, kv[1])) ? "%s=\"%s\"\n" : "%s='%s'\n", kv[0], kv[1])
      if kv[1] != null
    ])
  }
}

# Lambda refuses a function whose environment is over 4 KB, counted as the
# bytes of every key and value; Netlify's functions run on Lambda, under
# the same limit. The document list is the part that grows, so the plan
# checks the sum (lambda.tf, outputs.tf) before AWS or Netlify refuses it.
locals {
  env_limit = 4096
  # Values not known until the apply, at their known size: the bucket's
  # name, and an access key made here (its id is 20 characters, its
  # secret 40).
  env_sizes_at_plan = merge({ CV_S3_BUCKET = var.bucket_name }, var.create_access_keys ? {
    CV_AWS_ACCESS_KEY_ID     = format("%020d", 0)
    CV_AWS_SECRET_ACCESS_KEY = format("%040d", 0)
  } : {})
  env_bytes = {
    for name, settings in merge(
      { for fn in local.function_set : fn => local.function_settings_by_name[fn] },
      # Target netlify: the site's functions also hold the CV_OTP_SECRET
      # the owner adds, two 64-character keys during a rotation.
      local.on_aws ? {} : { netlify = concat(local.function_settings, [["CV_OTP_SECRET", format("%0129d", 0)]]) },
      ) : name => nonsensitive(sum(concat([0], [
        for kv in settings : length(kv[0]) + (
          length(base64encode(lookup(local.env_sizes_at_plan, kv[0], kv[1]))) / 4 * 3 -
          length(regexall("=", base64encode(lookup(local.env_sizes_at_plan, kv[0], kv[1]))))
        ) if lookup(local.env_sizes_at_plan, kv[0], kv[1]) != null
    ])))
  }
  # How much of it the document list takes, for the message.
  documents_env_bytes = length("CV_DOCUMENTS") + length(base64encode(local.documents_env)) / 4 * 3 - length(regexall("=", base64encode(local.documents_env)))
}
