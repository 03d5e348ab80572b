"""Kubernetes deployment tests: the Helm chart, the Dockerfile and the operator, without a cluster."""
