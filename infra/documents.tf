# The gated documents: ONE list, site/data/cv_access.json, which the site
# (Hugo data), the functions (CV_DOCUMENTS, below) and this module read.
# It holds no local path (the site's repository may be public; the files
# are private): the files to upload come from var.document_files.
#
# Read here with the rules the functions enforce (access.ParseDocuments),
# so a list they would refuse stops the plan, not the functions' start.

locals {
  documents_file = coalesce(var.documents_file, "${path.module}/../site/data/cv_access.json")
  # As messages name it.
  documents_file_name = coalesce(var.documents_file, "site/data/cv_access.json")
  documents_json      = try(jsondecode(file(local.documents_file)), null)
  documents_is_list   = can(regex("^\\[", jsonencode(local.documents_json.documents)))
  documents_raw       = [for d in try(local.documents_json.documents, []) : d if local.documents_is_list]

  document_fields = ["slug", "title", "key", "page", "link_seconds"]

  # Each document with its defaults filled in (key <slug>.pdf, page "/",
  # link_seconds 120). A value of the wrong type is kept as it is, for
  # the checks below to name.
  documents_parsed = [for d in local.documents_raw : {
    slug         = try(d.slug, null)
    title        = try(d.title, null)
    key          = try(d.key, null) == null ? "${try(tostring(d.slug), "")}.pdf" : d.key
    page         = try(d.page, null) == null ? "/" : d.page
    link_seconds = try(d.link_seconds, null) == null ? 120 : d.link_seconds
  }]
  document_slugs = [for d in local.documents_parsed : try(tostring(d.slug), "")]
  document_keys  = [for d in local.documents_parsed : try(tostring(d.key), "")]

  # What is wrong with the list, one sentence per document and field.
  # JSON strings are told from numbers and booleans by their encoding.
  document_problems = concat(
    local.documents_json == null ? ["it cannot be read as JSON"] : [],
    local.documents_json != null && !local.documents_is_list ? ["it needs {\"documents\": [...]}, a list of documents"] : [],
    local.documents_is_list && length(local.documents_raw) == 0 ? ["it lists no document: list 1 to 20"] : [],
    [for k in try(keys(local.documents_json), []) : "it has the unknown field \"${k}\" (only \"documents\")" if k != "documents"],
    length(local.documents_raw) > 20 ? ["it lists ${length(local.documents_raw)} documents: at most 20"] : [],
    flatten([for i, d in local.documents_raw : [
      for problem in concat(
        can(keys(d)) ? [] : ["must be a JSON object"],
        [for k in try(keys(d), []) : "has the unknown field \"${k}\" (the fields are ${join(", ", local.document_fields)})" if !contains(local.document_fields, k)],
        can(regex("^\"[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?\"$", jsonencode(local.documents_parsed[i].slug))) ? [] :
        ["slug must be 1 to 32 lower-case letters, digits or hyphens, starting and ending with a letter or digit"],
        local.document_slugs[i] == "" || index(local.document_slugs, local.document_slugs[i]) == i ? [] :
        ["slug \"${local.document_slugs[i]}\" is document ${index(local.document_slugs, local.document_slugs[i]) + 1}'s too: slugs must be unique"],
        # Characters as the functions count them (runes, after trimming);
        # no control or format character (bidi marks), no line break.
        startswith(jsonencode(local.documents_parsed[i].title), "\"") && try(length(regexall("(?s).", trimspace(local.documents_parsed[i].title))) <= 60 &&
        trimspace(local.documents_parsed[i].title) != "" && !can(regex("[\\p{Cc}\\p{Cf}\\x{2028}\\x{2029}\\x{FFFD}]", local.documents_parsed[i].title)), false) ? [] :
        ["title must be 1 to 60 characters of plain text, without control characters or line breaks"],
        can(regex("^\"[A-Za-z0-9!_.'()/-]{1,512}\"$", jsonencode(local.documents_parsed[i].key))) && !startswith(local.document_keys[i], "/") &&
        !can(regex("(^|/)\\.{0,2}(/|$)", local.document_keys[i])) ? [] :
        ["key must be 1 to 512 safe characters (letters, digits, and !_.'()/-; no *, which IAM reads as a wildcard), not starting with / and without empty, . or .. segments"],
        local.document_keys[i] == "" || index(local.document_keys, local.document_keys[i]) == i ? [] :
        ["key \"${local.document_keys[i]}\" is document ${index(local.document_keys, local.document_keys[i]) + 1}'s too: keys must be unique"],
        startswith(jsonencode(local.documents_parsed[i].page), "\"") && can(regex("^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]{0,199}$", local.documents_parsed[i].page)) && !startswith(local.documents_parsed[i].page, "//") ? [] :
        ["page must be the site path of the document's form: / and up to 199 of the characters a URL path takes (A-Z a-z 0-9 ._~!$&'()*+,;=:@%/-), not starting with //"],
        can(regex("^[0-9]+$", jsonencode(local.documents_parsed[i].link_seconds))) && try(local.documents_parsed[i].link_seconds >= 30 && local.documents_parsed[i].link_seconds <= 3600, false) ? [] :
        ["link_seconds must be a whole number from 30 to 3600"],
      ) : "document ${i + 1}${local.document_slugs[i] == "" ? "" : " (\"${local.document_slugs[i]}\")"}: ${problem}"
    ]]),
  )

  # The list as the functions get it (CV_DOCUMENTS): defaults filled in,
  # minified. An apostrophe (a title's, or a key's) is written \u0027, so
  # the value can sit in single quotes in an env file. Empty while the
  # list is wrong: the guard below stops the plan and says why.
  documents         = [for d in local.documents_parsed : d if length(local.document_problems) == 0]
  documents_by_slug = { for d in local.documents : d.slug => d }
  documents_env     = replace(jsonencode({ documents = local.documents }), "'", "\\u0027")
  # Its size in bytes, as the functions measure it (main.tf counts the
  # variable's name in too).
  documents_list_bytes = local.documents_env_bytes - length("CV_DOCUMENTS")
  document_object_arns = [for d in local.documents : "${local.bucket_arn}/${d.key}"]

  # Uploads, by slug: document_files, and cv_path under its older name.
  document_files = merge(var.cv_path == null ? {} : { cv = var.cv_path }, var.document_files)
}

# The list as checked, and as the functions get it: a plan shows a change
# to it here.
resource "terraform_data" "documents_guard" {
  input = local.documents_env

  lifecycle {
    precondition {
      condition     = length(local.document_problems) == 0
      error_message = "The document list ${local.documents_file_name} (documents_file) is not right: ${join("; ", local.document_problems)}."
    }
    precondition {
      condition     = local.documents_list_bytes <= 2500
      error_message = "The document list ${local.documents_file_name} (documents_file) is ${local.documents_list_bytes} bytes as CV_DOCUMENTS: the functions take at most 2500 (beside the other settings in Lambda's 4 KB). Shorten titles and keys, or list fewer documents."
    }
  }
}

# Each document given a local file, uploaded as its key. A document with
# none is yours to upload: aws s3 cp FILE s3://BUCKET/KEY (the functions
# only read it).
resource "aws_s3_object" "document" {
  for_each = { for slug, path in local.document_files : slug => path if contains(keys(local.documents_by_slug), slug) }

  bucket                 = aws_s3_bucket.cv.id
  key                    = local.documents_by_slug[each.key].key
  source                 = each.value
  source_hash            = filemd5(each.value)
  content_type           = lookup(local.content_types, lower(regex("[^.]*$", local.documents_by_slug[each.key].key)), "application/octet-stream")
  server_side_encryption = "AES256"

  depends_on = [aws_s3_bucket_ownership_controls.cv, aws_s3_bucket_server_side_encryption_configuration.cv, terraform_data.documents_guard]
}

# Before the document list, the one CV was aws_s3_object.cv (cv_path).
moved {
  from = aws_s3_object.cv[0]
  to   = aws_s3_object.document["cv"]
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
