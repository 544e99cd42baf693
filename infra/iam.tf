# The identities the functions run as, each allowed exactly what its code
# calls on exactly these resources: on target netlify one IAM user the
# functions share (with a key); on target aws one execution role per
# function (lambda.tf). The owner's user lists and erases requests with
# cv-owner. On Netlify every function of a site sees the same environment,
# so a second key for sending would sit beside the first and separate
# nothing: the split comes with the roles.

locals {
  any = ["*"]

  # Per table, what the code calls (functions-src/internal/awsbackend/awsbase):
  # the requests and codes are created, read, updated and deleted (a
  # request whose code could not be delivered is removed); the rate-limit
  # counters are only ever incremented.
  item_actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
  transactions = local.emulator_compat ? ["dynamodb:TransactGetItems", "dynamodb:TransactWriteItems"] : []
}

# Every statement the functions may need, by name; each identity below
# gets the ones its code calls.
locals {
  statements = {
    RequestsAndCodes = {
      actions   = concat(local.item_actions, local.transactions)
      resources = [local.table_arns.requests, local.table_arns.otps]
    }
    # verify-access reads a request and its code and marks them used or
    # expired; it never creates or deletes one.
    ReadAndMarkRequestsAndCodes = {
      actions   = concat(["dynamodb:GetItem", "dynamodb:UpdateItem"], local.emulator_compat ? ["dynamodb:TransactWriteItems"] : [])
      resources = [local.table_arns.requests, local.table_arns.otps]
    }
    RateLimitCounters = {
      actions   = concat(["dynamodb:UpdateItem"], local.emulator_compat ? ["dynamodb:TransactWriteItems"] : [])
      resources = [local.table_arns.limits]
    }
    SendCodeEmail = {
      actions   = ["ses:SendEmail"]
      resources = compact([local.ses_identity_arn, local.ses_config_set_arn])
      condition = { test = "StringEquals", variable = "ses:FromAddress", values = [local.mail_from_address] }
    }
    # A text to a phone number has no ARN, so AWS needs a wildcard here;
    # NotResource keeps every topic out of it.
    SendCodeSMSToPhoneNumbersOnly = {
      actions       = ["sns:Publish"]
      not_resources = ["arn:${local.partition}:sns:*:*:*"]
    }
    # The listed documents, each by its own ARN: nothing else in the
    # bucket.
    ReadTheDocuments = {
      actions   = ["s3:GetObject"]
      resources = local.document_object_arns
      exact     = true # moto matches S3 statements by ARN
    }
    # The owner's notifier: it claims a verified request (one conditional
    # update), and emails the owner, and nobody else.
    ClaimNotifications = {
      actions   = ["dynamodb:UpdateItem"]
      resources = [local.table_arns.requests]
    }
    SendOwnerEmail = {
      actions   = ["ses:SendEmail"]
      resources = compact([local.ses_identity_arn, local.ses_config_set_arn])
      conditions = [
        { test = "StringEquals", variable = "ses:FromAddress", values = [local.mail_from_address] },
        # The notifier sends to the address as the app normalises it.
        { test = "ForAllValues:StringEquals", variable = "ses:Recipients", values = [lower(coalesce(var.owner_email, "-"))] },
        # ForAllValues also holds for a request with no recipients at all.
        { test = "Null", variable = "ses:Recipients", values = ["false"] },
      ]
    }
    # The owner page (the owner function, with owner_email): its sign-in
    # codes, which become its sessions, are codes-table items with no
    # request, created, counted, used and read: only items whose key
    # starts "owner-", never a visitor's code. (Deleting is EraseRequests'.)
    OwnerSignInAndSessions = {
      actions   = concat(["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"], local.emulator_compat ? ["dynamodb:TransactWriteItems"] : [])
      resources = [local.table_arns.otps]
      conditions = [
        { test = "ForAllValues:StringLike", variable = "dynamodb:LeadingKeys", values = ["owner-*"] },
        # ForAllValues also holds for a request that names no key.
        { test = "Null", variable = "dynamodb:LeadingKeys", values = ["false"] },
      ]
    }
    # The owner page's list: a consistent scan of the requests, as cv-owner.
    ListRequests = {
      actions   = ["dynamodb:Scan"]
      resources = [local.table_arns.requests]
    }
    # Its erasure, a request and its code deleted together, and its
    # sign-out, a session deleted.
    EraseRequests = {
      actions   = concat(["dynamodb:DeleteItem"], local.emulator_compat ? ["dynamodb:TransactWriteItems"] : [])
      resources = [local.table_arns.requests, local.table_arns.otps]
    }
    # What Lambda's poller reads the requests table's stream with.
    ReadRequestsStream = {
      actions   = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"]
      resources = ["${local.table_arns.requests}/stream/*"]
    }
    # ListStreams names no resource: IAM allows it only on "*". It lists
    # stream ARNs, nothing in them.
    ListStreams = {
      actions   = ["dynamodb:ListStreams"]
      resources = local.any
    }
  }

  # Who gets what: the IAM user the functions share on Netlify, and on
  # AWS one execution role per function. With owner_email the owner page
  # is on: on Netlify its function shares the user, which then may also
  # scan the requests (what the page lists; it already holds every other
  # action the page needs); on AWS it gets a role of its own, and the
  # visitors' functions still cannot scan.
  grants = merge({
    functions        = concat(["RequestsAndCodes", "RateLimitCounters", "SendCodeEmail", "SendCodeSMSToPhoneNumbersOnly", "ReadTheDocuments"], local.notify ? ["ListRequests"] : [])
    "request-access" = ["RequestsAndCodes", "RateLimitCounters", "SendCodeEmail", "SendCodeSMSToPhoneNumbersOnly"]
    "verify-access"  = ["ReadAndMarkRequestsAndCodes", "RateLimitCounters", "ReadTheDocuments"]
    }, local.notify ? {
    "notify-access" = ["ClaimNotifications", "SendOwnerEmail", "ReadRequestsStream", "ListStreams"]
    owner           = ["OwnerSignInAndSessions", "ListRequests", "EraseRequests", "RateLimitCounters", "SendOwnerEmail"]
  } : {})
}

# The emulator switch (main.tf) widens policies and trust: it must never
# reach AWS. A failed precondition stops the whole plan.
resource "terraform_data" "emulator_guard" {
  lifecycle {
    precondition {
      condition     = !local.emulator_compat || local.account == "123456789012"
      error_message = "local.emulator_compat is on (an *_override.tf file sets it): it is for the tests' AWS look-alike only. Remove the override file."
    }
  }
}

data "aws_iam_policy_document" "grants" {
  for_each = local.grants

  dynamic "statement" {
    for_each = each.value
    content {
      sid     = statement.value
      actions = local.statements[statement.value].actions
      resources = (local.emulator_compat && !try(local.statements[statement.value].exact, false) ? local.any :
      try(local.statements[statement.value].resources, null))
      not_resources = local.emulator_compat ? null : try(local.statements[statement.value].not_resources, null)

      dynamic "condition" {
        for_each = concat(try([local.statements[statement.value].condition], []), try(local.statements[statement.value].conditions, []))
        content {
          test     = condition.value.test
          variable = condition.value.variable
          values   = condition.value.values
        }
      }
    }
  }
}

resource "aws_iam_user" "functions" {
  count = var.deploy_target == "netlify" ? 1 : 0
  name  = var.function_user_name
  path  = "/cv-access/"
}

resource "aws_iam_user_policy" "functions" {
  count  = var.deploy_target == "netlify" ? 1 : 0
  name   = "cv-access-functions"
  user   = aws_iam_user.functions[0].name
  policy = data.aws_iam_policy_document.grants["functions"].json

  depends_on = [terraform_data.emulator_guard]

  lifecycle {
    # AWS allows an IAM user 2,048 characters of inline policy (whitespace
    # not counted), and refuses more only at apply: one grant per document
    # key grows it.
    precondition {
      condition     = length(data.aws_iam_policy_document.grants["functions"].minified_json) <= 2048
      error_message = "The functions' IAM user policy would be ${length(data.aws_iam_policy_document.grants["functions"].minified_json)} characters, over the 2048 AWS allows a user's inline policies: shorten the document keys, or list fewer documents (or use target aws, whose roles allow 10240)."
    }
  }
}

# The functions sign download links with this key, so it must be a
# long-lived user key: a link signed with temporary credentials dies with
# them. The secret is kept in the Terraform state; see infra/README.md for
# keeping it out.
resource "aws_iam_access_key" "functions" {
  count = var.create_access_keys && var.deploy_target == "netlify" ? 1 : 0
  user  = aws_iam_user.functions[0].name
}

# The functions' user gained a count with the aws target: existing
# deployments keep their user and key.
moved {
  from = aws_iam_user.functions
  to   = aws_iam_user.functions[0]
}

moved {
  from = aws_iam_user_policy.functions
  to   = aws_iam_user_policy.functions[0]
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
