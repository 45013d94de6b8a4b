-- Argo CD health of a trailboss.dev Deployment (a served model).
-- Healthy once the target version serves all traffic; Degraded when the
-- serving pods fail or a canary was aborted (the stable version still serves,
-- but the version in Git does not); Suspended while a rollout is paused;
-- Progressing during a rollout and until the operator has observed the latest spec.
local hs = {}

local function ready_message(status)
  if status.conditions ~= nil then
    for _, condition in ipairs(status.conditions) do
      if condition.type == "Ready" and condition.message ~= nil and condition.message ~= "" then
        return condition.message
      end
    end
  end
  return nil
end

local status = obj.status
local generation = obj.metadata.generation
if status == nil or status.observedGeneration == nil
    or (generation ~= nil and status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe the latest spec"
  return hs
end

local phase = status.phase
local message = ready_message(status) or ("Deployment is " .. tostring(phase or "Progressing"))
if phase == "Healthy" then
  hs.status = "Healthy"
elseif phase == "Degraded" then
  hs.status = "Degraded"
elseif phase == "Paused" then
  hs.status = "Suspended"
else
  hs.status = "Progressing"
end
hs.message = message
return hs
