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
  bucket_arn    = "arn:${local.partition}:s3:::${var.bucket_name}"
  cv_object_arn = "${local.bucket_arn}/${var.cv_key}"

  # "Name <address>" or a bare address.
  mail_from_address = lower(trimspace(try(regex("<([^<>]+)>\\s*$", var.mail_from)[0], var.mail_from)))
  mail_from_domain  = split("@", local.mail_from_address)[1]
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
