-- Promote fully: the rollout in progress skips its remaining steps and the new
-- version serves all traffic. A new UTC time each time, acted on once.
local os = require("os")
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["trailboss.dev/promote"] = os.date("!%Y-%m-%dT%H:%M:%SZ")
return obj
