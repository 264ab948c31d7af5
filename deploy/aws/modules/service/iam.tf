# One role per service, least privilege, no wildcard action or resource (scripts/deploy-checks.sh
# checks the grants against the AWS calls in the code):
#
# * execution role (ECS itself): pull the image, write the log streams, read the two secrets;
# * api task role: publish to the queue (the outbox relay), read the queue's attributes (the
#   dead-letter queue's URL at start, /metrics and the EMF lines), put and delete uploads/
#   (uploads, scheduled runs' copies), put downloads/ (the spreadsheet-safe copy a download
#   link serves), read results/, reports/, models/, shadow/ (a challenger's comparison) and
#   downloads/;
# * worker task role: receive, delete and extend messages of the queue, publish to it (the
#   relay) and to the dead-letter queue (a job dead-lettered with its last error), read the
#   dead-letter queue (closing jobs it holds), read and put results/, reports/, models/ (a
#   trained model), pieces/ (a file scored in pieces) and shadow/ (a challenger's scores), read
#   uploads/; put uploads/ and delete under every data prefix because the housekeeping jobs run
#   on workers: erasing an end customer rewrites the uploads, results and reports holding them,
#   and deleting a prediction or an organisation and retention remove objects;
# * migrate task: no task role at all (it only talks to PostgreSQL).
#
# s3:ListBucket on the bucket for both: /ready lists it, and without it S3 answers a missing
# object with 403 instead of 404 (Amazon S3 User Guide, "GetObject", Permissions).

data "aws_iam_policy_document" "ecs_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

data "aws_caller_identity" "current" {}

resource "aws_iam_role" "execution" {
  name               = "${var.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_assume.json
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "execution_secrets" {
  statement {
    sid       = "ReadTheTaskSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.database_url_secret_arn, var.jwt_secret_arn]
  }
}

resource "aws_iam_role_policy" "execution_secrets" {
  name   = "read-task-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution_secrets.json
}

# ---- api ----

resource "aws_iam_role" "api" {
  name               = "${var.name}-api"
  assume_role_policy = data.aws_iam_policy_document.ecs_assume.json
}

data "aws_iam_policy_document" "api" {
  statement {
    sid       = "PublishJobs"
    actions   = ["sqs:SendMessage"]
    resources = [var.queue_arn]
  }
  statement {
    sid       = "ReadQueueFigures"
    actions   = ["sqs:GetQueueAttributes"]
    resources = [var.queue_arn, var.dlq_arn]
  }
  statement {
    sid       = "FindTheDeadLetterQueue"
    actions   = ["sqs:GetQueueUrl"]
    resources = [var.dlq_arn]
  }
  statement {
    sid       = "StoreUploads"
    actions   = ["s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject"]
    resources = ["${var.bucket_arn}/uploads/*"]
  }
  statement {
    sid       = "StoreDownloadCopies"
    actions   = ["s3:PutObject", "s3:AbortMultipartUpload"]
    resources = ["${var.bucket_arn}/downloads/*"]
  }
  # The direct upload (POST /api/uploads): the API presigns the client's PUTs (its own
  # s3:PutObject above), lists the parts that arrived, and on completion reads the object back
  # (its size, the SHA-256, the head it checks as POST /api/csv does).
  statement {
    sid       = "CheckDirectUploads"
    actions   = ["s3:GetObject", "s3:ListMultipartUploadParts"]
    resources = ["${var.bucket_arn}/uploads/*"]
  }
  statement {
    sid     = "ReadResults"
    actions = ["s3:GetObject"]
    resources = [
      "${var.bucket_arn}/results/*",
      "${var.bucket_arn}/reports/*",
      "${var.bucket_arn}/models/*",
      "${var.bucket_arn}/shadow/*",
      "${var.bucket_arn}/downloads/*",
    ]
  }
  statement {
    sid       = "ListForReadinessAndNotFound"
    actions   = ["s3:ListBucket"]
    resources = [var.bucket_arn]
  }
}

resource "aws_iam_role_policy" "api" {
  name   = "retainwise-api"
  role   = aws_iam_role.api.id
  policy = data.aws_iam_policy_document.api.json
}

# ---- worker ----

resource "aws_iam_role" "worker" {
  name               = "${var.name}-worker"
  assume_role_policy = data.aws_iam_policy_document.ecs_assume.json
}

data "aws_iam_policy_document" "worker" {
  statement {
    sid       = "ConsumeJobs"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"]
    resources = [var.queue_arn]
  }
  statement {
    sid       = "PublishJobsAndDeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [var.queue_arn, var.dlq_arn]
  }
  statement {
    sid       = "ReadDeadLetters"
    actions   = ["sqs:ReceiveMessage", "sqs:ChangeMessageVisibility"]
    resources = [var.dlq_arn]
  }
  statement {
    sid       = "ReadQueueFigures"
    actions   = ["sqs:GetQueueAttributes"]
    resources = [var.queue_arn, var.dlq_arn]
  }
  statement {
    sid       = "FindTheDeadLetterQueue"
    actions   = ["sqs:GetQueueUrl"]
    resources = [var.dlq_arn]
  }
  statement {
    sid     = "ReadInputsAndOutputs"
    actions = ["s3:GetObject"]
    resources = [
      "${var.bucket_arn}/uploads/*",
      "${var.bucket_arn}/models/*",
      "${var.bucket_arn}/results/*",
      "${var.bucket_arn}/reports/*",
      "${var.bucket_arn}/pieces/*",
      "${var.bucket_arn}/shadow/*",
    ]
  }
  statement {
    sid     = "WriteOutputs"
    actions = ["s3:PutObject", "s3:AbortMultipartUpload"]
    resources = [
      "${var.bucket_arn}/results/*",
      "${var.bucket_arn}/reports/*",
      "${var.bucket_arn}/models/*",
      "${var.bucket_arn}/pieces/*",
      "${var.bucket_arn}/shadow/*",
    ]
  }
  # Erasing an end customer rewrites the upload that held them.
  statement {
    sid       = "RewriteUploadsForErasure"
    actions   = ["s3:PutObject", "s3:AbortMultipartUpload"]
    resources = ["${var.bucket_arn}/uploads/*"]
  }
  # Pieces after their merge; a prediction's or an organisation's files on deletion; what
  # retention and an erasure remove.
  statement {
    sid     = "Housekeeping"
    actions = ["s3:DeleteObject"]
    resources = [
      "${var.bucket_arn}/uploads/*",
      "${var.bucket_arn}/results/*",
      "${var.bucket_arn}/reports/*",
      "${var.bucket_arn}/downloads/*",
      "${var.bucket_arn}/pieces/*",
      "${var.bucket_arn}/shadow/*",
      "${var.bucket_arn}/models/*",
    ]
  }
  statement {
    sid       = "ListForNotFound"
    actions   = ["s3:ListBucket"]
    resources = [var.bucket_arn]
  }
}

resource "aws_iam_role_policy" "worker" {
  name   = "retainwise-worker"
  role   = aws_iam_role.worker.id
  policy = data.aws_iam_policy_document.worker.json
}
