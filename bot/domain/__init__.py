"""The domain: the types and pure rules every other layer points to, and nothing else. `states` (the phase
model and every vendor's status words), `errors` (the BackendError tree and what each error means to a user),
`jobs` (what a message shows about a job, what the outbox owes, the enums the database and Slack hold),
`durations` (how long a job's runs usually take) and `runs` (what a listing of recent runs answers, and how a
followed name is matched).

May import: nothing of the bot (the standard library only): it is the bottom layer."""
