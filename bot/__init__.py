"""syncwatch: a Slack bot that watches long-running vendor jobs and data syncs."""
