-- Pause: the rollout holds its current step (and a rollout that starts later holds
-- its first) until resumed; time paused does not count towards its deadline.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["trailboss.dev/paused"] = "true"
return obj
