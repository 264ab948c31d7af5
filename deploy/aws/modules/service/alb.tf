# The public front: an application load balancer with HTTPS only (no port 80 at all), TLS 1.2+,
# invalid headers dropped, and a health check on the API's /health.

resource "aws_lb" "api" {
  name                       = var.name
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = var.public_subnet_ids
  security_groups            = [aws_security_group.alb.id]
  drop_invalid_header_fields = true
  enable_deletion_protection = var.alb_deletion_protection
  idle_timeout               = 130 # above RETAINWISE_REQUEST_TIMEOUT_SECS (120): the API answers 408 first
  #checkov:skip=CKV_AWS_91:Access logs need a log bucket with its own policy; the API logs every request with its status and latency (README, "Observability")
  #checkov:skip=CKV2_AWS_28:AWS WAF costs $5/month + $1 per rule; the API has per-IP and per-user rate limits and connection caps of its own (README, "Security"). Attach a web ACL to this load balancer where required
}

resource "aws_lb_target_group" "api" {
  name        = "${var.name}-api"
  port        = local.api_port
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = var.vpc_id

  deregistration_delay = 30

  health_check {
    path                = "/health"
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
  #checkov:skip=CKV_AWS_378:TLS ends at the load balancer; the hop to the task stays inside the VPC's private subnets, reachable only from the load balancer's security group
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.api.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api.arn
  }
}
