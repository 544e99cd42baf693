# The sender of the code email. A domain (recommended: the records below
# prove it and sign with DKIM) or a single address (SES mails it a link to
# click). The SES v1 identity resources are used: they make the same
# identity the functions send from with the SES v2 API.
resource "aws_ses_domain_identity" "sender" {
  count  = local.ses_is_address ? 0 : 1
  domain = local.ses_identity
}

resource "aws_ses_domain_dkim" "sender" {
  count  = local.ses_is_address ? 0 : 1
  domain = aws_ses_domain_identity.sender[0].domain
}

resource "aws_ses_email_identity" "sender" {
  count = local.ses_is_address ? 1 : 0
  email = local.ses_identity
}
