-- Retrain now: a TrainingRun from spec.retraining.template, whatever the cooldown
-- or a rollout in progress (spec.retraining.maxConcurrentRuns still holds).
local os = require("os")
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["trailboss.dev/retrain"] = os.date("!%Y-%m-%dT%H:%M:%SZ")
return obj
