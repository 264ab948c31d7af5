variable "name" {
  description = "Prefix of every resource name."
  type        = string
}

variable "region" {
  description = "AWS region (for the endpoint service names)."
  type        = string
}

variable "cidr" {
  description = "The VPC's address range; subnets are /24s carved from it."
  type        = string
}

variable "az_count" {
  description = "Availability zones used (2 or 3)."
  type        = number
}

variable "nat_gateway_per_az" {
  description = "One NAT gateway per zone (resilient) instead of one in all (cheaper)."
  type        = bool
}

variable "interface_endpoints" {
  description = "AWS services reached through interface endpoints instead of the NAT (e.g. sqs, logs, ecr.api, ecr.dkr, secretsmanager)."
  type        = list(string)
}

variable "log_retention_days" {
  description = "Days the flow logs are kept."
  type        = number
}
