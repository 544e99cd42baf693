variable "region" {
  description = "AWS region for the tables, bucket, SES identity and SMS. Netlify runs functions in us-east-2 unless the site is set otherwise: keep them together."
  type        = string
  default     = "us-east-2"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as us-east-2 or eu-west-1."
  }
}

variable "site_url" {
  description = "The site's public origin, e.g. https://cv.example.com: the only origin the functions answer, and the link in messages."
  type        = string

  validation {
    condition     = can(regex("^https://[a-z0-9.-]+(:[0-9]+)?$", var.site_url))
    error_message = "site_url must be an https origin with no path or trailing slash, in lower case, e.g. https://cv.example.com."
  }
}

variable "owner_name" {
  description = "Whose CV it is, as named in the code email and SMS."
  type        = string

  validation {
    condition     = length(trimspace(var.owner_name)) > 0 && length(var.owner_name) <= 100 && !can(regex("[\\x00-\\x1f\\x7f\"\\\\$`]", var.owner_name))
    error_message = "owner_name must be 1 to 100 characters, without control characters, quotes, backslashes, $ or backticks (it goes into an env file)."
  }
}

variable "mail_from" {
  description = "Sender of the code email, \"Name <address>\" or an address. Its address must belong to ses_identity."
  type        = string

  validation {
    condition = (can(regex("^([^<>]*<)?[^@<>\\s]+@[a-zA-Z0-9.-]+\\.[a-zA-Z]{2,}>?$", trimspace(var.mail_from))) &&
    !can(regex("[\\x00-\\x1f\\x7f\"\\\\$`]", var.mail_from)))
    error_message = "mail_from must be an email address, optionally with a name: CV <cv@example.com>, without control characters, quotes, backslashes, $ or backticks."
  }
}

variable "ses_identity" {
  description = "The SES identity to create and send from: a domain (recommended; DKIM records are output) or one address. Default: the domain of mail_from."
  type        = string
  default     = null

  validation {
    condition     = var.ses_identity == null || can(regex("^([^@\\s]+@)?[a-z0-9-]+(\\.[a-z0-9-]+)+$", var.ses_identity))
    error_message = "ses_identity must be a lower-case domain (example.com) or an address (cv@example.com)."
  }

  validation {
    condition = var.ses_identity == null || (strcontains(coalesce(var.ses_identity, "-"), "@") ?
      lower(trimspace(try(regex("<([^<>]+)>\\s*$", var.mail_from)[0], var.mail_from))) == var.ses_identity :
    endswith(lower(trimspace(try(regex("<([^<>]+)>\\s*$", var.mail_from)[0], var.mail_from))), "@${coalesce(var.ses_identity, "-")}"))
    error_message = "mail_from's address must be ses_identity (an address) or belong to it (a domain): SES sends only from a verified identity."
  }
}

variable "ses_configuration_set" {
  description = "Name of an existing SES configuration set to send through (for bounce and complaint events), or null."
  type        = string
  default     = null

  validation {
    condition     = var.ses_configuration_set == null || can(regex("^[A-Za-z0-9_-]{1,64}$", var.ses_configuration_set))
    error_message = "ses_configuration_set must be an SES configuration set name: 1 to 64 letters, digits, underscores or hyphens."
  }
}

variable "bucket_name" {
  description = "Name of the private bucket that holds the CV (globally unique)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name)) && !strcontains(var.bucket_name, "..")
    error_message = "bucket_name must be 3 to 63 characters of lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit."
  }
}

variable "cv_key" {
  description = "Object key of the CV in the bucket; its base name is the file name a visitor saves."
  type        = string
  default     = "cv.pdf"

  validation {
    condition     = can(regex("^[A-Za-z0-9!_.'()/-]{1,512}$", var.cv_key)) && !startswith(var.cv_key, "/")
    error_message = "cv_key must be 1 to 512 safe characters (letters, digits, and !_.'()/-; no *, which IAM reads as a wildcard) and must not start with /."
  }
}

variable "cv_path" {
  description = "Local path of the CV to upload as cv_key, or null to upload it yourself."
  type        = string
  default     = null

  validation {
    condition     = var.cv_path == null || can(filemd5(var.cv_path))
    error_message = "cv_path must name a readable file."
  }
}

variable "tables" {
  description = "DynamoDB table names: requests (CV_TABLE_REQUESTS), otps (CV_TABLE_OTPS), limits (CV_TABLE_LIMITS)."
  type = object({
    requests = optional(string, "cv-requests")
    otps     = optional(string, "otps")
    limits   = optional(string, "cv-rate-limits")
  })
  default = {}

  validation {
    condition     = alltrue([for n in values(var.tables) : can(regex("^[A-Za-z0-9_.-]{3,255}$", n))])
    error_message = "Each table name must be 3 to 255 letters, digits, underscores, dots or hyphens."
  }

  validation {
    condition     = length(distinct(values(var.tables))) == 3
    error_message = "The three table names must differ."
  }
}

variable "manage_sms_preferences" {
  description = "Set the account's SMS preferences in this region (transactional type, spend limit, sender id). They are account-wide: false leaves them to whoever owns them."
  type        = bool
  default     = true
}

variable "sms_monthly_spend_limit" {
  description = "Monthly SMS spend limit in USD for the account in this region: past it, SNS stops sending texts (codes still go by email). New accounts may not exceed 1 until AWS raises their quota."
  type        = number
  default     = 1

  validation {
    condition     = var.sms_monthly_spend_limit >= 0 && floor(var.sms_monthly_spend_limit) == var.sms_monthly_spend_limit
    error_message = "sms_monthly_spend_limit must be a whole number of USD, 0 or more."
  }
}

variable "sms_sender_id" {
  description = "Alphanumeric sender id shown on texts where the country allows one (3 to 11 letters or digits, at least one letter), or null."
  type        = string
  default     = null

  validation {
    condition     = var.sms_sender_id == null || can(regex("^[A-Za-z0-9]{3,11}$", var.sms_sender_id)) && can(regex("[A-Za-z]", var.sms_sender_id))
    error_message = "sms_sender_id must be 3 to 11 letters or digits, with at least one letter."
  }
}

variable "function_user_name" {
  description = "Name of the IAM user whose key the functions use."
  type        = string
  default     = "cv-access-functions"

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", var.function_user_name))
    error_message = "function_user_name must be an IAM user name: 1 to 64 letters, digits or +=,.@_-."
  }
}

variable "owner_user_name" {
  description = "Name of the IAM user for the owner's tool, cv-owner (list and erase)."
  type        = string
  default     = "cv-access-owner"

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", var.owner_user_name)) && var.owner_user_name != var.function_user_name
    error_message = "owner_user_name must be an IAM user name (1 to 64 letters, digits or +=,.@_-), other than function_user_name."
  }
}

variable "create_access_keys" {
  description = "Create the two users' access keys here. Their secrets are then stored in the Terraform state; false leaves the keys to you (infra/README.md says how)."
  type        = bool
  default     = true
}
