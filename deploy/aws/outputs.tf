output "ecr_repository_url" {
  description = "Push images here (README, step 3)."
  value       = module.service.ecr_repository_url
}

output "alb_dns_name" {
  description = "Point domain_name at this name (README, step 4)."
  value       = module.service.alb_dns_name
}

output "alb_zone_id" {
  description = "Hosted zone of the load balancer, for a Route 53 alias record."
  value       = module.service.alb_zone_id
}

output "cluster_name" {
  description = "The ECS cluster."
  value       = module.service.cluster_name
}

output "migrate_task_definition" {
  description = "The one-off migrate task (README, step 4)."
  value       = module.service.migrate_task_definition
}

output "private_subnet_ids" {
  description = "Subnets for `aws ecs run-task` (the migrate task)."
  value       = module.network.private_subnet_ids
}

output "tasks_security_group_id" {
  description = "Security group for `aws ecs run-task`."
  value       = module.service.tasks_security_group_id
}

output "bucket_name" {
  description = "The object bucket."
  value       = module.data.bucket_name
}

output "queue_url" {
  description = "The prediction queue."
  value       = module.data.queue_url
}

output "alarm_topic_arn" {
  description = "SNS topic of the alarms."
  value       = module.monitoring.alarm_topic_arn
}

output "dashboard_name" {
  description = "The CloudWatch dashboard."
  value       = module.monitoring.dashboard_name
}
