# SMS settings for the account in this region: codes are sent as
# transactional messages (the route AWS optimises for delivery), and the
# monthly spend limit caps what SMS pumping could ever cost.
# These preferences are account-wide: set manage_sms_preferences = false
# if another application in the account owns them.
resource "aws_sns_sms_preferences" "this" {
  count = var.manage_sms_preferences ? 1 : 0

  default_sms_type    = "Transactional"
  monthly_spend_limit = var.sms_monthly_spend_limit
  default_sender_id   = var.sms_sender_id
}
