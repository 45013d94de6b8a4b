-- Argo CD health of a trailboss.dev Deployment (a served model).
-- Degraded when the spec names no servable version or a canary was aborted (the
-- stable version still serves, but the version in Git does not). Healthy once the
-- target version serves all traffic and Ready is True (or absent); Degraded when
-- Ready is False there; Suspended while a rollout is paused; Progressing during a
-- rollout and until the operator has observed the latest spec.
local hs = {}

local function find_ready(status)
  if status.conditions ~= nil then
    for _, condition in ipairs(status.conditions) do
      if condition.type == "Ready" then
        return condition
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
local ready = find_ready(status)
local stale_ready = ready ~= nil and ready.observedGeneration ~= nil and generation ~= nil
    and ready.observedGeneration < generation
hs.message = "Deployment is " .. tostring(phase or "Progressing")
if ready ~= nil and ready.message ~= nil and ready.message ~= "" then
  hs.message = ready.message
end

if phase == "Degraded" then
  hs.status = "Degraded"
elseif phase == "Paused" then
  hs.status = "Suspended"
elseif stale_ready then
  hs.status = "Progressing"
elseif phase == "Healthy" then
  -- Done by its phase; Ready says whether it still works (no Ready: the phase decides).
  if ready == nil or ready.status == "True" then
    hs.status = "Healthy"
  elseif ready.status == "False" then
    hs.status = "Degraded"
  else
    hs.status = "Progressing"
  end
else
  hs.status = "Progressing"
end
return hs
