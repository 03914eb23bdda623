"""Remote GPU management, client side: the API table shared with the agent, client keys,
trust in agents (known hosts, fingerprints, CA files) and the remote backend the CLI uses."""
