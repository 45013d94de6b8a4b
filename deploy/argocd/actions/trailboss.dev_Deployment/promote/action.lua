-- Promote one step: the rollout in progress ends its current step (its pause and
-- analysis) and moves to the next, as `kubectl argo rollouts promote` does; at the
-- last step it promotes. A new "step:<UTC time>" value each time, acted on once.
local os = require("os")
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["trailboss.dev/promote"] = "step:" .. os.date("!%Y-%m-%dT%H:%M:%SZ")
return obj
