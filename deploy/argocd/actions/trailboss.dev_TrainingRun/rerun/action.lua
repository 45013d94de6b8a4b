-- Rerun: create a new TrainingRun with this one's spec (a spec is immutable,
-- so training again is a new object), named <name>-rerun-<UTC time> and
-- labelled with the run it repeats. It is not owned by the old run: deleting
-- the old one must not delete the new one.
local os = require("os")
local max_name = 63
local suffix = "-rerun-" .. os.date("!%Y%m%d%H%M%S")
local base = string.sub(obj.metadata.name, 1, max_name - string.len(suffix))
base = string.gsub(base, "[-.]+$", "")

local spec = {}
for key, value in pairs(obj.spec) do
  if key ~= "suspend" then
    spec[key] = value
  end
end

local labels = {}
if obj.metadata.labels ~= nil then
  for key, value in pairs(obj.metadata.labels) do
    labels[key] = value
  end
end
labels["trailboss.dev/rerun-of"] = obj.metadata.name

local run = {
  apiVersion = obj.apiVersion,
  kind = obj.kind,
  metadata = {name = base .. suffix, namespace = obj.metadata.namespace, labels = labels},
  spec = spec,
}
return {{operation = "create", resource = run}}
