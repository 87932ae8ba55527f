"""jobstatus: a Slack bot that watches long batch jobs on Oracle Fusion, Oracle EPM, Veeva Vault and
Immuta."""
