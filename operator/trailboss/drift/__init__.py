"""The drift engine: reference profiles, the statistics, verdicts, and the
`trailboss profile` / `trailboss drift` commands that run them as Jobs."""
