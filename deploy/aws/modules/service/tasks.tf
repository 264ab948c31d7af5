# Task definitions and services. Every variable set here is one the binary reads
# (`retainwise env-vars`); the original service's names are used where it had one
# (DATABASE_URL, S3_BUCKET, PREDICTIONS_QUEUE_URL with ENABLE_SQS, CLERK_FRONTEND_API,
# AWS_REGION). Secrets come through the `secrets` block from Secrets Manager.

locals {
  api_port = 8080
  image    = "${aws_ecr_repository.this.repository_url}:${var.image_tag}"
  sqs      = var.queue_backend == "sqs"

  queue_env = local.sqs ? [
    { name = "ENABLE_SQS", value = "true" },
    { name = "PREDICTIONS_QUEUE_URL", value = var.queue_url },
    ] : [
    { name = "RETAINWISE_QUEUE_URL", value = "db" },
  ]

  common_env = concat(local.queue_env, [
    { name = "AWS_REGION", value = var.region },
    { name = "S3_BUCKET", value = var.bucket_name },
    { name = "RETAINWISE_VISIBILITY_TIMEOUT_SECS", value = tostring(var.visibility_timeout_secs) },
    { name = "RETAINWISE_MAX_RECEIVES", value = tostring(var.max_receives) },
    { name = "RETAINWISE_MAX_UPLOAD_BYTES", value = tostring(var.max_upload_bytes) },
    { name = "RETAINWISE_NO_MIGRATE", value = "true" },
    { name = "RETAINWISE_LOG_FORMAT", value = "json" },
    { name = "RETAINWISE_EMF_INTERVAL_SECS", value = "60" },
    { name = "RETAINWISE_EMF_NAMESPACE", value = var.metrics_namespace },
  ])

  # Sign-in: a JWKS provider when one is configured, else the generated HS256 secret.
  auth_env = var.clerk_frontend_api != "" ? [
    { name = "CLERK_FRONTEND_API", value = var.clerk_frontend_api },
    ] : var.jwks_url != "" ? [
    { name = "RETAINWISE_JWKS_URL", value = var.jwks_url },
    { name = "RETAINWISE_JWT_ISSUER", value = var.jwt_issuer },
  ] : []
  auth_secrets = var.clerk_frontend_api == "" && var.jwks_url == "" ? [
    { name = "RETAINWISE_JWT_SECRET", valueFrom = var.jwt_secret_arn },
  ] : []

  api_env = concat(local.common_env, local.auth_env, [
    { name = "RETAINWISE_BIND", value = "0.0.0.0:${local.api_port}" },
    { name = "RETAINWISE_PUBLIC_URL", value = "https://${var.domain_name}" },
    { name = "RETAINWISE_TRUSTED_PROXIES", value = var.vpc_cidr },
  ])

  worker_env = concat(local.common_env, [
    { name = "RETAINWISE_WORKER_CONCURRENCY", value = tostring(var.worker_concurrency) },
  ])

  db_secret = [{ name = "DATABASE_URL", valueFrom = var.database_url_secret_arn }]

  logging = {
    for role in ["api", "worker", "migrate"] : role => {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.role[role].name
        awslogs-region        = var.region
        awslogs-stream-prefix = role
      }
    }
  }

  # The root file system is read-only; temporary files (downloads being scored) go to /tmp,
  # a task-local volume on Fargate's ephemeral storage.
  tmp_mount = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
}

resource "aws_ecs_task_definition" "api" {
  family                   = "${var.name}-api"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.api_cpu
  memory                   = var.api_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.api.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([{
    name                   = "api"
    image                  = local.image
    command                = ["api"]
    essential              = true
    readonlyRootFilesystem = true
    portMappings           = [{ containerPort = local.api_port, protocol = "tcp" }]
    environment            = local.api_env
    secrets                = concat(local.db_secret, local.auth_secrets)
    mountPoints            = local.tmp_mount
    stopTimeout            = 30
    logConfiguration       = local.logging["api"]
  }])
}

resource "aws_ecs_task_definition" "worker" {
  family                   = "${var.name}-worker"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.worker_cpu
  memory                   = var.worker_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.worker.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([{
    name                   = "worker"
    image                  = local.image
    command                = ["worker"]
    essential              = true
    readonlyRootFilesystem = true
    environment            = local.worker_env
    secrets                = local.db_secret
    mountPoints            = local.tmp_mount
    # On scale-in ECS sends SIGTERM: the worker stops receiving, finishes the jobs it is running
    # and exits; 120 s is Fargate's maximum before SIGKILL (a longer job runs again elsewhere
    # once its lease expires).
    stopTimeout      = 120
    logConfiguration = local.logging["worker"]
  }])
}

# The one-off schema step of a release (deploy/aws/README.md, "Roll out a new image"):
# `aws ecs run-task --task-definition <name>-migrate …`. No task role: it only needs PostgreSQL.
resource "aws_ecs_task_definition" "migrate" {
  family                   = "${var.name}-migrate"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 256
  memory                   = 512
  execution_role_arn       = aws_iam_role.execution.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([{
    name                   = "migrate"
    image                  = local.image
    command                = ["migrate"]
    essential              = true
    readonlyRootFilesystem = true
    environment = [
      { name = "RETAINWISE_LOG_FORMAT", value = "json" },
      { name = "RETAINWISE_DB_CONNECT_TIMEOUT_SECS", value = "300" },
    ]
    secrets          = local.db_secret
    logConfiguration = local.logging["migrate"]
  }])
}

resource "aws_ecs_service" "api" {
  name                   = "api"
  cluster                = aws_ecs_cluster.this.id
  task_definition        = aws_ecs_task_definition.api.arn
  desired_count          = var.api_desired_count
  launch_type            = "FARGATE"
  platform_version       = "LATEST"
  propagate_tags         = "SERVICE"
  enable_execute_command = false

  health_check_grace_period_seconds = 60

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.api.arn
    container_name   = "api"
    container_port   = local.api_port
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  depends_on = [aws_lb_listener.https]
}

resource "aws_ecs_service" "worker" {
  name                   = "worker"
  cluster                = aws_ecs_cluster.this.id
  task_definition        = aws_ecs_task_definition.worker.arn
  desired_count          = 0 # the autoscaler owns it from here (autoscaling.tf)
  launch_type            = "FARGATE"
  platform_version       = "LATEST"
  propagate_tags         = "SERVICE"
  enable_execute_command = false

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  lifecycle {
    ignore_changes = [desired_count]
  }
}
