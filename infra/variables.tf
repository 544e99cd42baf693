variable "region" {
  description = "AWS region for the tables, bucket, SES identity, SMS and (target aws) the functions. Netlify runs functions in us-east-2 unless the site is set otherwise: keep them together (another region adds its round trip to every AWS call, and two to every new connection; README, step 1)."
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

variable "documents_file" {
  description = "The document list, JSON: {\"documents\": [{\"slug\", \"title\", \"key\"?, \"page\"?, \"link_seconds\"?}, ...]}, the one the site and the functions read (they get it as CV_DOCUMENTS). Default: site/data/cv_access.json in this repository. A relative path is read from infra/."
  type        = string
  default     = null

  validation {
    condition     = var.documents_file == null || can(file(coalesce(var.documents_file, "-")))
    error_message = "documents_file must name a readable file (the default is site/data/cv_access.json in this repository)."
  }
}

variable "document_files" {
  description = "The files to upload, by document slug: { cv = \"/home/ada/cv.pdf\", portfolio = \"...\" }, each as its document's key. A relative path is read from infra/. A listed document without a file here is yours to upload (aws s3 cp FILE s3://BUCKET/KEY)."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for slug in keys(var.document_files) : contains(local.document_slugs, slug)])
    error_message = "document_files names ${join(", ", [for slug in keys(var.document_files) : "\"${slug}\"" if !contains(local.document_slugs, slug)])}, which the document list ${local.documents_file_name} does not hold: it lists ${join(", ", [for slug in local.document_slugs : "\"${slug}\""])}."
  }

  validation {
    condition     = alltrue([for path in values(var.document_files) : can(filemd5(path))])
    error_message = "document_files must name readable files: ${join(", ", [for slug, path in var.document_files : "${slug} = \"${path}\"" if !can(filemd5(path))])} cannot be read."
  }
}

# The older names of the one-CV days, kept so an existing terraform.tfvars
# plans as before; infra/README.md, "From one CV to a document list".
variable "cv_path" {
  description = "Older name of document_files[\"cv\"]: a local file to upload as the key the document list gives \"cv\". Null: none."
  type        = string
  default     = null

  validation {
    condition     = var.cv_path == null || can(filemd5(coalesce(var.cv_path, "-")))
    error_message = "cv_path must name a readable file."
  }

  validation {
    condition     = var.cv_path == null || contains(local.document_slugs, "cv")
    error_message = "cv_path uploads the document with slug \"cv\", which the document list ${local.documents_file_name} does not hold: set document_files = { <slug> = \"${coalesce(var.cv_path, "-")}\" } instead."
  }

  validation {
    condition     = var.cv_path == null || !contains(keys(var.document_files), "cv")
    error_message = "cv_path and document_files[\"cv\"] both name the CV's file: keep document_files and remove cv_path."
  }
}

variable "cv_key" {
  description = "Superseded: the document list gives each document's key. Null, or the key the list gives \"cv\"."
  type        = string
  default     = null

  validation {
    condition     = var.cv_key == null || try(local.document_keys[index(local.document_slugs, "cv")], null) == var.cv_key
    error_message = "cv_key is superseded by the document list ${local.documents_file_name}, which gives ${contains(local.document_slugs, "cv") ? "\"cv\" the key \"${try(local.document_keys[index(local.document_slugs, "cv")], "")}\"" : "no document \"cv\""}: set \"key\" there and remove cv_key from terraform.tfvars."
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

# Where the two functions run. "netlify": on Netlify Functions (Lambda
# compatibility mode), with an IAM user's key in the site's environment.
# "aws": on AWS Lambda behind one API Gateway HTTP API, each with its own
# execution role and no static key; the site stays on Netlify and proxies
# /api/* to the API with a signed redirect (CV_API_ORIGIN on Netlify).
variable "deploy_target" {
  description = "Where the functions run: \"netlify\" (Netlify Functions, an IAM user's key) or \"aws\" (AWS Lambda behind an HTTP API, execution roles, no static key)."
  type        = string
  default     = "netlify"

  validation {
    condition     = contains(["netlify", "aws"], var.deploy_target)
    error_message = "deploy_target must be \"netlify\" or \"aws\"."
  }
}

variable "netlify_site_id" {
  description = "Target aws: the Netlify site's id (Site configuration, Site details, Site ID). The functions serve only requests Netlify's signed proxy forwarded for this site."
  type        = string
  default     = null

  validation {
    condition     = var.netlify_site_id == null || can(regex("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", var.netlify_site_id))
    error_message = "netlify_site_id must be the site's id as Netlify shows it, a lower-case UUID."
  }

  validation {
    condition     = var.deploy_target != "aws" || var.netlify_site_id != null
    error_message = "deploy_target = \"aws\" needs netlify_site_id: the functions admit only Netlify's proxy for that site."
  }
}

variable "otp_secret" {
  description = "Target aws: CV_OTP_SECRET, the key of the codes' HMAC (at least 32 characters; commas separate old keys, newest first). Pass it as TF_VAR_otp_secret, never in a file in git. It is kept in the Terraform state and the functions' configuration."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.deploy_target != "aws" || (var.otp_secret != null && alltrue([for s in split(",", coalesce(var.otp_secret, "-")) : length(trimspace(s)) >= 32]))
    error_message = "deploy_target = \"aws\" needs otp_secret (TF_VAR_otp_secret), each comma-separated key at least 32 characters: openssl rand -hex 32."
  }
}

variable "proxy_sign_secret" {
  description = "Target aws: CV_PROXY_SIGN_SECRET, the secret Netlify signs proxied requests with (the same value goes into the Netlify site's environment under that name). At least 32 characters; commas separate an old secret during a change, newest first. Pass it as TF_VAR_proxy_sign_secret."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.deploy_target != "aws" || (var.proxy_sign_secret != null && alltrue([for s in split(",", coalesce(var.proxy_sign_secret, "-")) : length(trimspace(s)) >= 32]))
    error_message = "deploy_target = \"aws\" needs proxy_sign_secret (TF_VAR_proxy_sign_secret), each comma-separated secret at least 32 characters: openssl rand -hex 32."
  }
}

variable "lambda_packages" {
  description = "The functions on Lambda (target aws's two, and the notifier with owner_email): the folder holding <architecture>/<function>.zip (`make lambda-packages` writes them). Default: .local/lambda at the repository root."
  type        = string
  default     = null
}

variable "lambda_architecture" {
  description = "The functions on Lambda (target aws's two, and the notifier): their CPU, arm64 (Graviton: 20% cheaper per GB-second, packages 10% smaller) or x86_64. Terraform uploads the packages `make lambda-packages LAMBDA_ARCH=<this>` built for it."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.lambda_architecture)
    error_message = "lambda_architecture must be arm64 or x86_64."
  }
}

variable "lambda_memory_mb" {
  description = "The functions on Lambda: memory of each in MB; Lambda gives CPU in proportion. The functions use about 25 MB."
  type        = number
  default     = 256

  validation {
    condition     = var.lambda_memory_mb >= 128 && var.lambda_memory_mb <= 10240 && floor(var.lambda_memory_mb) == var.lambda_memory_mb
    error_message = "lambda_memory_mb must be a whole number from 128 to 10240."
  }
}

variable "reserved_concurrency" {
  description = "Target aws: the most copies of each function that may run at once, a cost cap against floods. AWS refuses any reservation on an account whose concurrency quota is still the new-account 10: set null there (the API's throttle still caps the rate)."
  type        = number
  default     = 5

  validation {
    condition     = var.reserved_concurrency == null || (coalesce(var.reserved_concurrency, 1) >= 1 && floor(coalesce(var.reserved_concurrency, 1)) == coalesce(var.reserved_concurrency, 1))
    error_message = "reserved_concurrency must be a whole number, 1 or more, or null."
  }
}

variable "api_throttle" {
  description = "Target aws: the HTTP API's limit across all callers, requests per second (steady) and burst. Past it the API answers 429 without invoking a function, so a flood costs at most this rate."
  type = object({
    rate_per_second = optional(number, 5)
    burst           = optional(number, 20)
  })
  default = {}

  validation {
    condition     = var.api_throttle.rate_per_second > 0 && var.api_throttle.burst >= 1 && floor(var.api_throttle.burst) == var.api_throttle.burst
    error_message = "api_throttle needs rate_per_second > 0 and a whole burst of 1 or more."
  }
}

variable "log_retention_days" {
  description = "The functions on Lambda: days their CloudWatch logs are kept. They carry request ids and outcomes only, but sit next to personal data: keep it short."
  type        = number
  default     = 7

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30], var.log_retention_days)
    error_message = "log_retention_days must be one of 1, 3, 5, 7, 14 or 30."
  }
}

variable "owner_email" {
  description = "The owner's address (CV_OWNER_EMAIL), or null for none. With it, the owner is emailed about each download (the requests table's stream feeds notify-access on AWS Lambda, on either target; `make lambda-packages` first), and the owner page (/owner/) is on: its sign-in code goes to this address alone (target netlify: the functions' user may then also scan the requests; target aws: the owner function behind the API, with a role of its own). The SES identity must be allowed to send to it; in SES's sandbox, verify the address too."
  type        = string
  default     = null

  validation {
    condition     = var.owner_email == null || can(regex("^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)+$", coalesce(var.owner_email, "-")))
    error_message = "owner_email must be one address, e.g. ada@example.com, without a display name."
  }
}
