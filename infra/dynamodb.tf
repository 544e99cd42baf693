# The three tables exactly as the functions expect them: one string hash
# key, TTL on "ttl" (expired requests, codes and counters delete
# themselves), on demand, point-in-time recovery, encrypted with the AWS
# managed key. No secondary index: erasure scans, to find every spelling
# of an inbox.
locals {
  table_keys = {
    requests = "request_id"
    otps     = "request_id"
    limits   = "limit_key"
  }
}

resource "aws_dynamodb_table" "this" {
  for_each = local.table_keys

  name         = var.tables[each.key]
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = each.value

  attribute {
    name = each.value
    type = "S"
  }

  ttl {
    attribute_name = "ttl"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }

  # The owner's notifier reads the requests' changes (notify.tf).
  stream_enabled   = each.key == "requests" && local.notify
  stream_view_type = each.key == "requests" && local.notify ? "NEW_AND_OLD_IMAGES" : null
}
