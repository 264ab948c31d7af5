# The object store: uploads/, results/, reports/ and models/ in one private bucket.

resource "aws_s3_bucket" "objects" {
  bucket_prefix = "${var.name}-objects-"
  force_destroy = false
  #checkov:skip=CKV_AWS_144:Cross-region replication doubles storage and transfer cost; versioning plus the retention rules below is the recovery path, and a team that needs a second region adds a replica bucket
  #checkov:skip=CKV_AWS_145:SSE-S3 (AES-256) encrypts every object; a customer-managed KMS key would add kms:Decrypt/GenerateDataKey to both task roles and a KMS request per object
  #checkov:skip=CKV_AWS_18:Server access logs need a second bucket and grow without bound; object-level access is recorded by CloudTrail data events when an account enables them
  #checkov:skip=CKV2_AWS_62:Nothing consumes bucket events: jobs are announced through the queue, in the same transaction as their database rows
}

resource "aws_s3_bucket_public_access_block" "objects" {
  bucket                  = aws_s3_bucket.objects.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "objects" {
  bucket = aws_s3_bucket.objects.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "objects" {
  bucket = aws_s3_bucket.objects.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "objects" {
  bucket = aws_s3_bucket.objects.id
  versioning_configuration {
    status = "Enabled"
  }
}

# Customers' files are kept only as long as the operator chose: uploads and results expire
# after their retention, older versions a week later, and unfinished multipart uploads (a
# killed API), anywhere in the bucket, after a day. models/ is never expired.
resource "aws_s3_bucket_lifecycle_configuration" "objects" {
  bucket     = aws_s3_bucket.objects.id
  depends_on = [aws_s3_bucket_versioning.objects]

  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  rule {
    id     = "uploads"
    status = "Enabled"
    filter {
      prefix = "uploads/"
    }
    expiration {
      days = var.upload_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 7
    }
  }

  rule {
    id     = "results"
    status = "Enabled"
    filter {
      prefix = "results/"
    }
    expiration {
      days = var.result_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 7
    }
  }

  rule {
    id     = "reports"
    status = "Enabled"
    filter {
      prefix = "reports/"
    }
    expiration {
      days = var.result_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 7
    }
  }

  rule {
    id     = "models-old-versions"
    status = "Enabled"
    filter {
      prefix = "models/"
    }
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
  }
}

# Plain HTTP to the bucket is refused, whoever asks.
data "aws_iam_policy_document" "objects_tls_only" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"]
    resources = [
      aws_s3_bucket.objects.arn,
      "${aws_s3_bucket.objects.arn}/*",
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

resource "aws_s3_bucket_policy" "objects" {
  bucket     = aws_s3_bucket.objects.id
  policy     = data.aws_iam_policy_document.objects_tls_only.json
  depends_on = [aws_s3_bucket_public_access_block.objects]
}

# The upload page sends a large file's parts straight to the bucket with presigned PUTs (the
# direct upload, README "Files of any size"): the browser needs the site's origin allowed, for
# PUT only, under uploads/ (the URLs themselves are what authorise each request).
resource "aws_s3_bucket_cors_configuration" "objects" {
  bucket = aws_s3_bucket.objects.id

  cors_rule {
    allowed_methods = ["PUT"]
    allowed_origins = [var.site_origin]
    allowed_headers = ["content-type"]
    max_age_seconds = 3600
  }
}
