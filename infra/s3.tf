# The private bucket: nothing public, no ACLs, encrypted, reachable over
# TLS only. Visitors reach the CV through two-minute presigned links.
resource "aws_s3_bucket" "cv" {
  bucket = var.bucket_name
}

resource "aws_s3_bucket_public_access_block" "cv" {
  bucket = aws_s3_bucket.cv.id

  block_public_acls       = true
  ignore_public_acls      = true
  block_public_policy     = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "cv" {
  bucket = aws_s3_bucket.cv.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "cv" {
  bucket = aws_s3_bucket.cv.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

data "aws_iam_policy_document" "tls_only" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      local.bucket_arn,
      "${local.bucket_arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "cv" {
  # The AWS look-alike the tests use ignores policy conditions, so it would
  # read this Deny as "deny everything"; the plan test checks it instead.
  count = local.emulator_compat ? 0 : 1

  bucket = aws_s3_bucket.cv.id
  policy = data.aws_iam_policy_document.tls_only.json

  # A bucket policy is refused while the public access block is being
  # written; order them.
  depends_on = [aws_s3_bucket_public_access_block.cv]
}

# The CV itself, when a path is given. Without one, upload it yourself:
# aws s3 cp cv.pdf s3://BUCKET/KEY (the functions only read it).
resource "aws_s3_object" "cv" {
  count = var.cv_path == null ? 0 : 1

  bucket                 = aws_s3_bucket.cv.id
  key                    = var.cv_key
  source                 = var.cv_path
  source_hash            = filemd5(var.cv_path)
  content_type           = lookup(local.content_types, lower(regex("[^.]*$", var.cv_key)), "application/octet-stream")
  server_side_encryption = "AES256"

  depends_on = [aws_s3_bucket_ownership_controls.cv, aws_s3_bucket_server_side_encryption_configuration.cv]
}

locals {
  content_types = {
    pdf  = "application/pdf"
    docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    odt  = "application/vnd.oasis.opendocument.text"
    txt  = "text/plain; charset=utf-8"
    html = "text/html; charset=utf-8"
  }
}
