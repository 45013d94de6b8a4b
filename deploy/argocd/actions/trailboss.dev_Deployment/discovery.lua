-- Argo CD actions on a trailboss.dev Deployment, as Argo Rollouts offers them on a
-- Rollout: promote (one step), promote-full (every remaining step) and abort while a
-- rollout is in progress; pause and resume; retrain when it has a retraining
-- template. Each writes an annotation, never the spec, so the Application stays Synced.
local actions = {}
local rolling = obj.status ~= nil and obj.status.canaryVersion ~= nil
local paused = obj.metadata.annotations ~= nil
    and obj.metadata.annotations["trailboss.dev/paused"] == "true"
local retrainable = obj.spec ~= nil and obj.spec.retraining ~= nil
    and obj.spec.retraining.template ~= nil

actions["promote"] = {["disabled"] = not rolling, ["iconClass"] = "fa fa-fw fa-forward"}
actions["promote-full"] = {
  ["disabled"] = not rolling, ["iconClass"] = "fa fa-fw fa-angle-double-right"
}
actions["abort"] = {["disabled"] = not rolling, ["iconClass"] = "fa fa-fw fa-times-circle"}
actions["pause"] = {["disabled"] = paused, ["iconClass"] = "fa fa-fw fa-pause-circle"}
actions["resume"] = {["disabled"] = not paused, ["iconClass"] = "fa fa-fw fa-play-circle"}
actions["retrain"] = {["disabled"] = not retrainable, ["iconClass"] = "fa fa-fw fa-redo"}
return actions
