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
