# Copy to terraform.tfvars and put in your own values.
region      = "us-east-2"
site_url    = "https://cv.example.com"
owner_name  = "Ada Lovelace"
mail_from   = "CV <cv@example.com>"
bucket_name = "example-private-cv"

# Upload your CV with the rest (or leave it out and upload it yourself).
# A relative path is read from infra/, where Terraform runs:
# cv_path = "/home/ada/Documents/cv.pdf"
