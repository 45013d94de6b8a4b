-- Argo CD health of a trailboss.dev TrainingRun.
-- Succeeded is Healthy and Failed is Degraded: both are final. A suspended run
-- is Suspended, like a suspended Job. Anything else is still Progressing,
-- including a spec change the operator has not observed yet.
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
local message = ready_message(status) or ("TrainingRun is " .. tostring(phase or "Pending"))
if phase == "Succeeded" then
  hs.status = "Healthy"
elseif phase == "Failed" then
  hs.status = "Degraded"
elseif obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
else
  hs.status = "Progressing"
end
hs.message = message
return hs
