output "cluster_name" {
  description = "The ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "api_service_name" {
  description = "The API service."
  value       = aws_ecs_service.api.name
}

output "worker_service_name" {
  description = "The worker service."
  value       = aws_ecs_service.worker.name
}

output "ecr_repository_url" {
  description = "Where to push images."
  value       = aws_ecr_repository.this.repository_url
}

output "alb_dns_name" {
  description = "The load balancer's name: point domain_name at it (CNAME or alias)."
  value       = aws_lb.api.dns_name
}

output "alb_zone_id" {
  description = "The load balancer's hosted zone (for a Route 53 alias)."
  value       = aws_lb.api.zone_id
}

output "alb_arn_suffix" {
  description = "The load balancer's CloudWatch dimension."
  value       = aws_lb.api.arn_suffix
}

output "target_group_arn_suffix" {
  description = "The API target group's CloudWatch dimension."
  value       = aws_lb_target_group.api.arn_suffix
}

output "migrate_task_definition" {
  description = "Family of the one-off migrate task."
  value       = aws_ecs_task_definition.migrate.family
}

output "tasks_security_group_id" {
  description = "Security group of the tasks (run-task network configuration)."
  value       = aws_security_group.tasks.id
}

output "log_groups" {
  description = "Log group of each role."
  value       = { for k, g in aws_cloudwatch_log_group.role : k => g.name }
}
