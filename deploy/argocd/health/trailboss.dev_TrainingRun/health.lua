-- Argo CD health of a trailboss.dev TrainingRun.
-- Failed is Degraded. Succeeded is Healthy while its Ready condition is True (or
-- absent), Degraded when Ready is False (what follows a success, recording the
-- run or registering the model, is failing) and Progressing when Ready is Unknown.
-- A suspended run is Suspended, like a suspended Job. Anything else is still
-- Progressing, including a spec change the operator has not observed yet.
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
hs.message = "TrainingRun is " .. tostring(phase or "Pending")
if ready ~= nil and ready.message ~= nil and ready.message ~= "" then
  hs.message = ready.message
end

if phase == "Failed" then
  hs.status = "Degraded"
elseif obj.spec ~= nil and obj.spec.suspend == true and phase ~= "Succeeded" then
  hs.status = "Suspended"
elseif stale_ready then
  hs.status = "Progressing"
elseif phase == "Succeeded" then
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
