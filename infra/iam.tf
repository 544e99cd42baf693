# Two identities. The functions' user may do exactly what the code calls,
# on exactly these resources; the owner's user lists and erases requests
# with cv-owner. Email and SMS share the functions' identity: on Netlify
# every function of a site sees the same environment, so a second key for
# sending would sit beside the first and separate nothing.

locals {
  any = ["*"]

  # Per table, what the code calls (functions-src/internal/awsbackend):
  # the requests and codes are created, read, updated and deleted (a
  # request whose code could not be delivered is removed); the rate-limit
  # counters are only ever incremented.
  item_actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
  transactions = local.emulator_compat ? ["dynamodb:TransactGetItems", "dynamodb:TransactWriteItems"] : []
}

data "aws_iam_policy_document" "functions" {
  statement {
    sid       = "RequestsAndCodes"
    actions   = concat(local.item_actions, local.transactions)
    resources = local.emulator_compat ? local.any : [local.table_arns.requests, local.table_arns.otps]
  }

  statement {
    sid       = "RateLimitCounters"
    actions   = concat(["dynamodb:UpdateItem"], local.transactions)
    resources = local.emulator_compat ? local.any : [local.table_arns.limits]
  }

  statement {
    sid       = "SendCodeEmail"
    actions   = ["ses:SendEmail"]
    resources = local.emulator_compat ? local.any : compact([local.ses_identity_arn, local.ses_config_set_arn])

    condition {
      test     = "StringEquals"
      variable = "ses:FromAddress"
      values   = [local.mail_from_address]
    }
  }

  # A text to a phone number has no ARN, so AWS needs a wildcard here;
  # NotResource keeps every topic out of it.
  statement {
    sid           = "SendCodeSMSToPhoneNumbersOnly"
    actions       = ["sns:Publish"]
    not_resources = local.emulator_compat ? null : ["arn:${local.partition}:sns:*:*:*"]
    resources     = local.emulator_compat ? local.any : null
  }

  statement {
    sid       = "ReadTheCV"
    actions   = ["s3:GetObject"]
    resources = [local.cv_object_arn]
  }
}

resource "aws_iam_user" "functions" {
  name = var.function_user_name
  path = "/cv-access/"
}

resource "aws_iam_user_policy" "functions" {
  name   = "cv-access-functions"
  user   = aws_iam_user.functions.name
  policy = data.aws_iam_policy_document.functions.json

  lifecycle {
    # The emulator switch widens this policy: it must never reach AWS.
    precondition {
      condition     = !local.emulator_compat || local.account == "123456789012"
      error_message = "local.emulator_compat is on (an *_override.tf file sets it): it is for the tests' AWS look-alike only. Remove the override file."
    }
  }
}

# The functions sign download links with this key, so it must be a
# long-lived user key: a link signed with temporary credentials dies with
# them. The secret is kept in the Terraform state; see infra/README.md for
# keeping it out.
resource "aws_iam_access_key" "functions" {
  count = var.create_access_keys ? 1 : 0
  user  = aws_iam_user.functions.name
}

data "aws_iam_policy_document" "owner" {
  statement {
    sid       = "ListRequests"
    actions   = ["dynamodb:Scan"]
    resources = local.emulator_compat ? local.any : [local.table_arns.requests]
  }

  # Erasure deletes a request and its code together, in one transaction.
  statement {
    sid       = "EraseRequests"
    actions   = concat(["dynamodb:DeleteItem"], local.emulator_compat ? ["dynamodb:TransactWriteItems"] : [])
    resources = local.emulator_compat ? local.any : [local.table_arns.requests, local.table_arns.otps]
  }
}

resource "aws_iam_user" "owner" {
  name = var.owner_user_name
  path = "/cv-access/"
}

resource "aws_iam_user_policy" "owner" {
  name   = "cv-access-owner"
  user   = aws_iam_user.owner.name
  policy = data.aws_iam_policy_document.owner.json
}

resource "aws_iam_access_key" "owner" {
  count = var.create_access_keys ? 1 : 0
  user  = aws_iam_user.owner.name
}
