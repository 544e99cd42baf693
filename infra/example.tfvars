# Copy to terraform.tfvars and put in your own values.
region      = "us-east-2"
site_url    = "https://cv.example.com"
owner_name  = "Ada Lovelace"
mail_from   = "CV <cv@example.com>"
bucket_name = "example-private-cv"

# The documents are listed in site/data/cv_access.json (documents_file).
# Upload their files with the rest, by slug (or leave one out and upload
# it yourself). A relative path is read from infra/, where Terraform runs:
# document_files = {
#   cv        = "/home/ada/Documents/cv.pdf"
#   portfolio = "/home/ada/Documents/portfolio.pdf"
# }
