"""The product's Slack side that is not a listener: the table of Slack's error codes (errors) and the sender."""
