# The owner's email about each download, on either target (off while
# owner_email is null): the requests table's stream feeds notify-access, a
# function of its own on AWS Lambda (its role, log group and package as in
# lambda.tf), so verify-access's answer waits for none of it. The function
# claims each request that turned VERIFIED (one conditional update), then
# emails the owner; a failed record is handed back and retried.

locals {
  notify = var.owner_email != null

  notifier_settings = concat(local.aws_settings, [
    ["CV_SITE_URL", var.site_url],
    ["CV_MAIL_FROM", trimspace(var.mail_from)],
    ["CV_SES_CONFIGURATION_SET", var.ses_configuration_set],
    ["CV_OWNER_EMAIL", var.owner_email],
  ])
}

# Test-only: moto runs a stream's function itself, through Docker, inside
# each write to the table, and with no Docker the write fails; so the
# tests' look-alike gets no mapping (the tests hand the function its
# records themselves), and the plan test checks what AWS gets.
resource "aws_lambda_event_source_mapping" "notify" {
  count             = local.notify && !local.emulator_compat ? 1 : 0
  event_source_arn  = aws_dynamodb_table.this["requests"].stream_arn
  function_name     = aws_lambda_function.function["notify-access"].arn
  starting_position = "LATEST"
  batch_size        = 10
  # A record that keeps failing (SES refusing the owner's address, say) is
  # tried for a day at most, in halves, and never blocks the shard longer.
  maximum_retry_attempts         = 20
  maximum_record_age_in_seconds  = 86400
  bisect_batch_on_function_error = true
  function_response_types        = ["ReportBatchItemFailures"]

  # Only updates that leave a request VERIFIED reach the function (its own
  # check then keeps the turn to VERIFIED alone); the rest cost nothing.
  filter_criteria {
    filter {
      pattern = jsonencode({
        eventName = ["MODIFY"]
        dynamodb  = { NewImage = { otp_status = { S = ["VERIFIED"] } } }
      })
    }
  }
}
