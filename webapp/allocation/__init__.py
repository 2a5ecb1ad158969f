"""The one owner of a published plan: publishing, the waitlist, the lottery, seats freed and refilled, pins.

`service` holds every write; each of its functions owns exactly one transaction. `waitlist` is the queue order,
`lottery` the term's seed and each pupil's draw, `seats` the rule for who fits a freed seat. Views, the
parents' service, the API and the demo call `service`; nothing else writes assignments of a published run.
"""
