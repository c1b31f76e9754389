"""Programs that run where the tools run, not in the Pulumi program, shipped there as files
(standard library, plus boto3 where the host has it): the bucket-freshness probe (inside a
container) and the ec2 instance agent (on each fleet instance: boot, register, drain)."""
