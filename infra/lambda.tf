# Target aws: the functions on AWS Lambda, each with its own execution
# role (no static key), behind one API Gateway HTTP API: the visitors' two,
# and with owner_email the owner page's. The site stays on Netlify, which
# proxies /api/<function> to the API with a signed redirect; the functions
# refuse anything else.
#
# One HTTP API rather than two Lambda function URLs: one origin, so moving
# a site between targets is one Netlify variable (CV_API_ORIGIN); and a
# throttle that answers a flood with 429 before any function runs. It costs
# USD 1.00 per million requests (a visitor makes two or three).

locals {
  on_aws = var.deploy_target == "aws"
  # The functions behind the HTTP API (target aws), and every function on
  # Lambda: those, and the owner's notifier (notify.tf) on either target.
  api_functions = local.on_aws ? toset(concat(["request-access", "verify-access"], local.notify ? ["owner"] : [])) : toset([])
  function_set  = setunion(local.api_functions, local.notify ? toset(["notify-access"]) : toset([]))
  packages      = "${coalesce(var.lambda_packages, "${path.root}/../.local/lambda")}/${var.lambda_architecture}"

  # The functions' configuration on Lambda: the same settings as on
  # Netlify, without a key (the SDK takes the role's credentials from the
  # runtime), with the secrets, and with the signed proxy's gate.
  lambda_settings = concat(local.aws_settings, local.site_settings, [
    ["CV_OTP_SECRET", var.otp_secret],
    ["CV_PROXY_SIGN_SECRET", var.proxy_sign_secret],
    ["CV_NETLIFY_SITE_ID", var.netlify_site_id],
  ])
  function_settings_by_name = {
    "request-access" = local.lambda_settings
    "verify-access"  = local.lambda_settings
    "notify-access"  = local.notifier_settings
    # The owner page sends its sign-in code to the owner's address alone.
    owner = concat(local.lambda_settings, [["CV_OWNER_EMAIL", var.owner_email]])
  }
}

data "aws_iam_policy_document" "lambda_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }

    # Test-only: the tests assume each role as the look-alike's
    # administrator, to run the functions with its credentials. moto
    # checks a role's trust policy, fails on a statement with no AWS
    # principal, and does not know aws:SourceAccount.
    dynamic "principals" {
      for_each = local.emulator_compat ? [1] : []
      content {
        type        = "AWS"
        identifiers = ["arn:${local.partition}:iam::${local.account}:user/admin"]
      }
    }

    dynamic "condition" {
      for_each = local.emulator_compat ? [] : [1]
      content {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [local.account]
      }
    }
  }
}

resource "aws_iam_role" "function" {
  for_each           = local.function_set
  name               = "cv-access-${each.key}"
  path               = "/cv-access/"
  assume_role_policy = data.aws_iam_policy_document.lambda_trust.json

  depends_on = [terraform_data.emulator_guard]
}

# Each role: what its function's code calls, and writing its own log.
data "aws_iam_policy_document" "function_role" {
  for_each                = local.function_set
  source_policy_documents = [data.aws_iam_policy_document.grants[each.key].json]

  statement {
    sid       = "WriteItsOwnLog"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["arn:${local.partition}:logs:${var.region}:${local.account}:log-group:/aws/lambda/cv-access-${each.key}:*"]
  }
}

resource "aws_iam_role_policy" "function" {
  for_each = local.function_set
  name     = "cv-access-${each.key}"
  role     = aws_iam_role.function[each.key].id
  policy   = data.aws_iam_policy_document.function_role[each.key].json

  depends_on = [terraform_data.emulator_guard]
}

# Made here, before the function, so the retention holds from the first
# line (Lambda would otherwise make it, kept forever) and the role needs no
# logs:CreateLogGroup.
resource "aws_cloudwatch_log_group" "function" {
  for_each          = local.function_set
  name              = "/aws/lambda/cv-access-${each.key}"
  retention_in_days = var.log_retention_days
}

resource "aws_lambda_function" "function" {
  for_each         = local.function_set
  function_name    = "cv-access-${each.key}"
  role             = aws_iam_role.function[each.key].arn
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = [var.lambda_architecture]
  filename         = "${local.packages}/${each.key}.zip"
  source_code_hash = fileexists("${local.packages}/${each.key}.zip") ? filebase64sha256("${local.packages}/${each.key}.zip") : null
  memory_size      = var.lambda_memory_mb
  # The API's functions keep their own deadlines well inside 10 s. The
  # notifier, behind no API, gets a minute: every record's claim must
  # be given back before Lambda stops it when SES is slow. One stream
  # shard runs one copy of it at a time, so it needs no reservation.
  timeout                        = each.key == "notify-access" ? 60 : 10
  reserved_concurrent_executions = each.key == "notify-access" ? -1 : coalesce(var.reserved_concurrency, -1)

  environment {
    variables = { for kv in local.function_settings_by_name[each.key] : kv[0] => kv[1] if kv[1] != null }
  }

  logging_config {
    log_format = "Text" # the functions write JSON lines themselves
    log_group  = aws_cloudwatch_log_group.function[each.key].name
  }

  depends_on = [aws_iam_role_policy.function]

  lifecycle {
    precondition {
      condition     = fileexists("${local.packages}/${each.key}.zip")
      error_message = "No package at ${local.packages}/${each.key}.zip: run `make lambda-packages LAMBDA_ARCH=${var.lambda_architecture}` at the repository root first."
    }

    precondition {
      condition     = local.env_bytes[each.key] <= local.env_limit
      error_message = "cv-access-${each.key}'s environment would be ${local.env_bytes[each.key]} bytes (keys and values, as Lambda counts them), over the 4 KB (4096) Lambda allows: the document list (CV_DOCUMENTS) takes ${local.documents_env_bytes} of them. Shorten the documents' titles, keys or pages in ${local.documents_file_name}, or list fewer."
    }
  }
}

resource "aws_apigatewayv2_api" "functions" {
  count         = local.on_aws ? 1 : 0
  name          = "cv-access"
  protocol_type = "HTTP"
  description   = "cv-access: its functions, called only through the Netlify site's signed proxy."
}

resource "aws_apigatewayv2_integration" "function" {
  for_each               = local.api_functions
  api_id                 = aws_apigatewayv2_api.functions[0].id
  integration_type       = "AWS_PROXY"
  integration_uri        = aws_lambda_function.function[each.key].invoke_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = 10000
}

# ANY, so that the functions themselves answer a wrong method (405) as on
# Netlify; no route, no function: every other path is the API's 404.
resource "aws_apigatewayv2_route" "function" {
  for_each  = local.api_functions
  api_id    = aws_apigatewayv2_api.functions[0].id
  route_key = "ANY /${each.key}"
  target    = "integrations/${aws_apigatewayv2_integration.function[each.key].id}"
}

resource "aws_apigatewayv2_stage" "default" {
  count       = local.on_aws ? 1 : 0
  api_id      = aws_apigatewayv2_api.functions[0].id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_rate_limit  = var.api_throttle.rate_per_second
    throttling_burst_limit = var.api_throttle.burst
  }
}

resource "aws_lambda_permission" "api" {
  for_each      = local.api_functions
  statement_id  = "cv-access-api"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.function[each.key].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.functions[0].execution_arn}/*/*/${each.key}"
}
