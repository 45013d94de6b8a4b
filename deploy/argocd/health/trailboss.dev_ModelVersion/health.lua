-- Argo CD health of a trailboss.dev ModelVersion.
-- Rejected (failed its gate) and Failed are Degraded. Validated is Healthy while
-- its Ready condition is True (or absent), Degraded when Ready is False (its
-- registry is unreachable, or its deletion is held) and Progressing when Ready is
-- Unknown. Pending and Registered are Progressing, as is a spec change the
-- operator has not observed yet.
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
hs.message = "ModelVersion is " .. tostring(phase or "Pending")
if ready ~= nil and ready.message ~= nil and ready.message ~= "" then
  hs.message = ready.message
end

if phase == "Rejected" or phase == "Failed" then
  hs.status = "Degraded"
elseif stale_ready then
  hs.status = "Progressing"
elseif phase == "Validated" then
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
