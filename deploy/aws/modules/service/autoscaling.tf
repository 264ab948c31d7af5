# Worker autoscaling on backlog per task, from zero.
#
# backlog = messages waiting + messages in flight (a job being scored counts, so a running job
# keeps its task); backlog per task = backlog / running tasks. Target tracking keeps it near
# var.worker_backlog_per_task between 0 and var.worker_max_count tasks (AWS Application Auto
# Scaling User Guide, "Target tracking scaling policies"; the SQS backlog-per-instance method of
# the EC2 Auto Scaling User Guide, "Scaling based on Amazon SQS"). With no task running the
# ratio has no denominator, so a second policy wakes the service: an alarm on "backlog > 0 and
# no running task" adds one task.
#
# The figures come from AWS/SQS with the SQS queue, or from the EMF lines the api and worker
# print (namespace var.metrics_namespace) with the database queue — the api always runs, so
# the backlog is measured while no worker does.

locals {
  # tomap: both branches must have one type (a map), whatever their dimension names.
  queue_metrics = local.sqs ? {
    namespace  = "AWS/SQS"
    dimensions = tomap({ QueueName = var.queue_name })
    waiting    = "ApproximateNumberOfMessagesVisible"
    in_flight  = "ApproximateNumberOfMessagesNotVisible"
    stat       = "Maximum"
    } : {
    namespace  = var.metrics_namespace
    dimensions = tomap({ Queue = "predictions" })
    waiting    = "QueueDepth"
    in_flight  = "QueueInFlight"
    stat       = "Maximum"
  }
  worker_resource_id = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.worker.name}"
}

resource "aws_appautoscaling_target" "worker" {
  service_namespace  = "ecs"
  scalable_dimension = "ecs:service:DesiredCount"
  resource_id        = local.worker_resource_id
  min_capacity       = 0
  max_capacity       = var.worker_max_count
}

resource "aws_appautoscaling_policy" "worker_backlog" {
  name               = "${var.name}-worker-backlog-per-task"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.worker.service_namespace
  scalable_dimension = aws_appautoscaling_target.worker.scalable_dimension
  resource_id        = aws_appautoscaling_target.worker.resource_id

  target_tracking_scaling_policy_configuration {
    target_value       = var.worker_backlog_per_task
    scale_out_cooldown = 60
    scale_in_cooldown  = 300

    customized_metric_specification {
      metrics {
        id          = "waiting"
        return_data = false
        metric_stat {
          stat = local.queue_metrics.stat
          metric {
            namespace   = local.queue_metrics.namespace
            metric_name = local.queue_metrics.waiting
            dynamic "dimensions" {
              for_each = local.queue_metrics.dimensions
              content {
                name  = dimensions.key
                value = dimensions.value
              }
            }
          }
        }
      }
      metrics {
        id          = "in_flight"
        return_data = false
        metric_stat {
          stat = local.queue_metrics.stat
          metric {
            namespace   = local.queue_metrics.namespace
            metric_name = local.queue_metrics.in_flight
            dynamic "dimensions" {
              for_each = local.queue_metrics.dimensions
              content {
                name  = dimensions.key
                value = dimensions.value
              }
            }
          }
        }
      }
      metrics {
        id          = "tasks"
        return_data = false
        metric_stat {
          stat = "Average"
          metric {
            namespace   = "ECS/ContainerInsights"
            metric_name = "RunningTaskCount"
            dimensions {
              name  = "ClusterName"
              value = aws_ecs_cluster.this.name
            }
            dimensions {
              name  = "ServiceName"
              value = aws_ecs_service.worker.name
            }
          }
        }
      }
      metrics {
        id          = "backlog_per_task"
        label       = "Jobs waiting or running per worker task"
        expression  = "(FILL(waiting, 0) + FILL(in_flight, 0)) / IF(FILL(tasks, 0) > 0, FILL(tasks, 0), 1)"
        return_data = true
      }
    }
  }
}

resource "aws_appautoscaling_policy" "worker_wake" {
  name               = "${var.name}-worker-wake-from-zero"
  policy_type        = "StepScaling"
  service_namespace  = aws_appautoscaling_target.worker.service_namespace
  scalable_dimension = aws_appautoscaling_target.worker.scalable_dimension
  resource_id        = aws_appautoscaling_target.worker.resource_id

  step_scaling_policy_configuration {
    adjustment_type         = "ChangeInCapacity"
    cooldown                = 60
    metric_aggregation_type = "Maximum"
    step_adjustment {
      metric_interval_lower_bound = 0
      scaling_adjustment          = 1
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "worker_wake" {
  alarm_name          = "${var.name}-worker-backlog-without-workers"
  alarm_description   = "Jobs are waiting and no worker task runs: start one (the backlog policy takes over from there)."
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_appautoscaling_policy.worker_wake.arn]

  metric_query {
    id          = "waiting"
    return_data = false
    metric {
      namespace   = local.queue_metrics.namespace
      metric_name = local.queue_metrics.waiting
      dimensions  = local.queue_metrics.dimensions
      period      = 60
      stat        = local.queue_metrics.stat
    }
  }

  metric_query {
    id          = "tasks"
    return_data = false
    metric {
      namespace   = "ECS/ContainerInsights"
      metric_name = "RunningTaskCount"
      dimensions = {
        ClusterName = aws_ecs_cluster.this.name
        ServiceName = aws_ecs_service.worker.name
      }
      period = 60
      stat   = "Average"
    }
  }

  metric_query {
    id          = "wake"
    label       = "Jobs waiting while no worker runs"
    expression  = "IF(FILL(waiting, 0) > 0 AND FILL(tasks, 0) == 0, 1, 0)"
    return_data = true
  }
}
