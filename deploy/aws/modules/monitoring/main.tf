# The original service's alarms, to one SNS topic, and one dashboard.
#
#   DLQ has more than 5 messages · oldest message older than 30 min · worker error rate > 5 %
#   API 5xx rate > 5 % · API and worker CPU / memory > 80 % · RDS free storage < 10 % of the
#   allocation, RDS CPU > 80 %
#
# The worker's job counts come from its JSON log lines (`message_processed`,
# `message_processing_failed`) through metric filters, so they need no extra right either.

resource "aws_sns_topic" "alarms" {
  name              = "${var.name}-alarms"
  kms_master_key_id = "alias/aws/sns"
}

resource "aws_sns_topic_subscription" "email" {
  for_each  = toset(var.alarm_emails)
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.value
}

locals {
  actions = [aws_sns_topic.alarms.arn]
  # tomap: both branches must have one type (a map), whatever their dimension names.
  queue = var.queue_backend == "sqs" ? {
    namespace  = "AWS/SQS"
    dimensions = tomap({ QueueName = var.queue_name })
    dead       = { name = "ApproximateNumberOfMessagesVisible", dimensions = tomap({ QueueName = var.dlq_name }) }
    oldest     = "ApproximateAgeOfOldestMessage"
    } : {
    namespace  = var.metrics_namespace
    dimensions = tomap({ Queue = "predictions" })
    dead       = { name = "QueueDead", dimensions = tomap({ Queue = "predictions" }) }
    oldest     = "QueueOldestMessageAge"
  }
}

resource "aws_cloudwatch_metric_alarm" "dlq" {
  alarm_name          = "${var.name}-dead-letters"
  alarm_description   = "More than ${var.dlq_alarm_threshold} dead-lettered jobs: `retainwise queue dead` lists them with their errors."
  namespace           = local.queue.namespace
  metric_name         = local.queue.dead.name
  dimensions          = local.queue.dead.dimensions
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.dlq_alarm_threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
}

resource "aws_cloudwatch_metric_alarm" "oldest_message" {
  alarm_name          = "${var.name}-oldest-job"
  alarm_description   = "A job has waited more than ${var.queue_age_alarm_seconds} s: workers are missing, stuck or too few."
  namespace           = local.queue.namespace
  metric_name         = local.queue.oldest
  dimensions          = local.queue.dimensions
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.queue_age_alarm_seconds
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
}

resource "aws_cloudwatch_log_metric_filter" "jobs" {
  for_each = {
    JobsProcessed = "message_processed"
    JobsFailed    = "message_processing_failed"
  }
  name           = "${var.name}-${each.key}"
  log_group_name = var.worker_log_group
  pattern        = "{ $.fields.message = \"${each.value}\" }"
  metric_transformation {
    name          = each.key
    namespace     = var.metrics_namespace
    value         = "1"
    default_value = "0"
    unit          = "Count"
  }
}

resource "aws_cloudwatch_metric_alarm" "worker_errors" {
  alarm_name          = "${var.name}-worker-error-rate"
  alarm_description   = "More than 5 % of job attempts failed with a server-side error over 10 minutes."
  comparison_operator = "GreaterThanThreshold"
  threshold           = 5
  evaluation_periods  = 2
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions

  metric_query {
    id = "ok"
    metric {
      namespace   = var.metrics_namespace
      metric_name = "JobsProcessed"
      period      = 300
      stat        = "Sum"
    }
  }
  metric_query {
    id = "failed"
    metric {
      namespace   = var.metrics_namespace
      metric_name = "JobsFailed"
      period      = 300
      stat        = "Sum"
    }
  }
  metric_query {
    id          = "error_rate"
    label       = "Failed job attempts (%)"
    expression  = "IF(ok + failed > 0, 100 * failed / (ok + failed), 0)"
    return_data = true
  }
  depends_on = [aws_cloudwatch_log_metric_filter.jobs]
}

resource "aws_cloudwatch_metric_alarm" "api_5xx" {
  alarm_name          = "${var.name}-api-5xx-rate"
  alarm_description   = "More than 5 % of API answers were 5xx over 10 minutes."
  comparison_operator = "GreaterThanThreshold"
  threshold           = 5
  evaluation_periods  = 2
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions

  metric_query {
    id = "errors"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_Target_5XX_Count"
      dimensions  = { LoadBalancer = var.alb_arn_suffix, TargetGroup = var.target_group_arn_suffix }
      period      = 300
      stat        = "Sum"
    }
  }
  metric_query {
    id = "requests"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "RequestCount"
      dimensions  = { LoadBalancer = var.alb_arn_suffix, TargetGroup = var.target_group_arn_suffix }
      period      = 300
      stat        = "Sum"
    }
  }
  metric_query {
    id          = "rate"
    label       = "5xx answers (%)"
    expression  = "IF(requests > 0, 100 * FILL(errors, 0) / requests, 0)"
    return_data = true
  }
}

resource "aws_cloudwatch_metric_alarm" "service_usage" {
  for_each = {
    api-cpu       = { service = var.api_service_name, metric = "CPUUtilization" }
    api-memory    = { service = var.api_service_name, metric = "MemoryUtilization" }
    worker-cpu    = { service = var.worker_service_name, metric = "CPUUtilization" }
    worker-memory = { service = var.worker_service_name, metric = "MemoryUtilization" }
  }
  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = "${each.value.service}: ${each.value.metric} above 80 % for 15 minutes."
  namespace           = "AWS/ECS"
  metric_name         = each.value.metric
  dimensions          = { ClusterName = var.cluster_name, ServiceName = each.value.service }
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = 80
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
}

resource "aws_cloudwatch_metric_alarm" "rds_storage" {
  alarm_name          = "${var.name}-db-free-storage"
  alarm_description   = "Less than 10 % of the database's allocated storage is free."
  namespace           = "AWS/RDS"
  metric_name         = "FreeStorageSpace"
  dimensions          = { DBInstanceIdentifier = var.db_instance_id }
  statistic           = "Minimum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "LessThanThreshold"
  threshold           = var.db_allocated_storage_gb * 1073741824 / 10
  treat_missing_data  = "breaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
}

resource "aws_cloudwatch_metric_alarm" "rds_cpu" {
  alarm_name          = "${var.name}-db-cpu"
  alarm_description   = "Database CPU above 80 % for 15 minutes."
  namespace           = "AWS/RDS"
  metric_name         = "CPUUtilization"
  dimensions          = { DBInstanceIdentifier = var.db_instance_id }
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = 80
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name
  dashboard_body = jsonencode({
    widgets = [
      {
        type = "metric", x = 0, y = 0, width = 12, height = 6
        properties = {
          title  = "Queue: waiting, in flight, dead"
          region = var.region
          stat   = "Maximum"
          period = 60
          metrics = var.queue_backend == "sqs" ? [
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.queue_name],
            ["AWS/SQS", "ApproximateNumberOfMessagesNotVisible", "QueueName", var.queue_name],
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.dlq_name],
            ] : [
            [var.metrics_namespace, "QueueDepth", "Queue", "predictions"],
            [var.metrics_namespace, "QueueInFlight", "Queue", "predictions"],
            [var.metrics_namespace, "QueueDead", "Queue", "predictions"],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 0, width = 12, height = 6
        properties = {
          title   = "Oldest waiting job (s) and worker tasks"
          region  = var.region
          period  = 60
          metrics = [
            [local.queue.namespace, local.queue.oldest, keys(local.queue.dimensions)[0], values(local.queue.dimensions)[0], { stat = "Maximum" }],
            ["ECS/ContainerInsights", "RunningTaskCount", "ClusterName", var.cluster_name, "ServiceName", var.worker_service_name, { stat = "Average", yAxis = "right" }],
          ]
        }
      },
      {
        type = "metric", x = 0, y = 6, width = 12, height = 6
        properties = {
          title  = "Jobs processed and failed"
          region = var.region
          stat   = "Sum"
          period = 300
          metrics = [
            [var.metrics_namespace, "JobsProcessed"],
            [var.metrics_namespace, "JobsFailed"],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 6, width = 12, height = 6
        properties = {
          title  = "API requests, 5xx and latency"
          region = var.region
          period = 60
          metrics = [
            ["AWS/ApplicationELB", "RequestCount", "LoadBalancer", var.alb_arn_suffix, { stat = "Sum" }],
            ["AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "LoadBalancer", var.alb_arn_suffix, { stat = "Sum" }],
            ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", var.alb_arn_suffix, { stat = "p99", yAxis = "right" }],
          ]
        }
      },
      {
        type = "metric", x = 0, y = 12, width = 12, height = 6
        properties = {
          title  = "CPU and memory (%)"
          region = var.region
          stat   = "Average"
          period = 300
          metrics = [
            ["AWS/ECS", "CPUUtilization", "ClusterName", var.cluster_name, "ServiceName", var.api_service_name],
            ["AWS/ECS", "MemoryUtilization", "ClusterName", var.cluster_name, "ServiceName", var.api_service_name],
            ["AWS/ECS", "CPUUtilization", "ClusterName", var.cluster_name, "ServiceName", var.worker_service_name],
            ["AWS/ECS", "MemoryUtilization", "ClusterName", var.cluster_name, "ServiceName", var.worker_service_name],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 12, width = 12, height = 6
        properties = {
          title  = "Database"
          region = var.region
          period = 300
          metrics = [
            ["AWS/RDS", "CPUUtilization", "DBInstanceIdentifier", var.db_instance_id, { stat = "Average" }],
            ["AWS/RDS", "FreeStorageSpace", "DBInstanceIdentifier", var.db_instance_id, { stat = "Minimum", yAxis = "right" }],
          ]
        }
      },
    ]
  })
}
