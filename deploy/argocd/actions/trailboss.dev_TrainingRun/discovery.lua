-- Argo CD actions on a trailboss.dev TrainingRun: suspend and resume while it
-- has not finished (spec.suspend is the one field of its spec that may change),
-- and rerun: a new TrainingRun with the same spec, at any time. A run in a Kueue
-- queue is not suspended: Kueue decides when it runs.
local actions = {}
local phase = nil
if obj.status ~= nil then
  phase = obj.status.phase
end
local finished = phase == "Succeeded" or phase == "Failed"
local suspended = obj.spec ~= nil and obj.spec.suspend == true
local queued = false
if obj.spec ~= nil and obj.spec.podTemplate ~= nil and obj.spec.podTemplate.metadata ~= nil
    and obj.spec.podTemplate.metadata.labels ~= nil then
  queued = obj.spec.podTemplate.metadata.labels["kueue.x-k8s.io/queue-name"] ~= nil
end

actions["suspend"] = {
  ["disabled"] = finished or suspended or queued, ["iconClass"] = "fa fa-fw fa-pause"
}
actions["resume"] = {["disabled"] = finished or not suspended, ["iconClass"] = "fa fa-fw fa-play"}
actions["rerun"] = {["disabled"] = false, ["iconClass"] = "fa fa-fw fa-redo"}
return actions
