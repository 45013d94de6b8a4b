-- Abort the rollout in progress: traffic returns to the stable version, and the
-- Deployment is Degraded until Git names a version that can be served.
local os = require("os")
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["trailboss.dev/abort"] = os.date("!%Y-%m-%dT%H:%M:%SZ")
return obj
