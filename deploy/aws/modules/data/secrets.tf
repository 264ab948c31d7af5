# Secrets the tasks receive through the ECS `secrets` block (never as plain environment in the
# task definition): the database URL with its password, and the HS256 signing secret when no
# external sign-in provider is configured.

resource "aws_secretsmanager_secret" "database_url" {
  name_prefix             = "${var.name}/database-url-"
  description             = "PostgreSQL URL of retainwise (DATABASE_URL), with its password"
  recovery_window_in_days = 7
  #checkov:skip=CKV_AWS_149:Encrypted with Secrets Manager's AWS-managed key; a customer-managed key would add a key policy for the execution role and the rotation steps in deploy/aws/README.md
  #checkov:skip=CKV2_AWS_57:Rotation needs a Lambda that rewrites the whole URL; deploy/aws/README.md gives the manual rotation (new password, new secret version, force a new deployment)
}

resource "aws_secretsmanager_secret_version" "database_url" {
  secret_id     = aws_secretsmanager_secret.database_url.id
  secret_string = "postgres://${aws_db_instance.this.username}:${random_password.db.result}@${aws_db_instance.this.endpoint}/${aws_db_instance.this.db_name}?sslmode=require"
}

resource "random_password" "jwt" {
  length  = 64
  special = false
}

resource "aws_secretsmanager_secret" "jwt" {
  name_prefix             = "${var.name}/jwt-secret-"
  description             = "HS256 secret of retainwise bearer tokens (RETAINWISE_JWT_SECRET), used when no JWKS provider is set"
  recovery_window_in_days = 7
  #checkov:skip=CKV_AWS_149:Encrypted with Secrets Manager's AWS-managed key (see the database URL secret)
  #checkov:skip=CKV2_AWS_57:Rotating it signs every user out; deploy/aws/README.md gives the manual steps
}

resource "aws_secretsmanager_secret_version" "jwt" {
  secret_id     = aws_secretsmanager_secret.jwt.id
  secret_string = random_password.jwt.result
}
