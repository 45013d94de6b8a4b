-- Rerun: create a new TrainingRun with this one's spec (a spec is immutable,
-- so training again is a new object), named <name>-rerun-<UTC time> and
-- labelled with the run it repeats. It is not owned by the old run: deleting
-- the old one must not delete the new one. Argo CD's tracking label is not
-- copied: the rerun is not in Git, and an Application that pruned it as its own
-- would delete it.
local os = require("os")

-- A TrainingRun name's limit (the CRD's rule on metadata.name).
local max_name = 40

-- The name as trailboss.builders.names.rerun_name makes it: a rerun of a rerun
-- takes the place of its mark, and the old name is cut so that the whole fits.
local function fit(base, suffix, limit)
  local keep = limit - string.len(suffix)
  if keep < 1 then
    keep = 1
  end
  local head = string.gsub(string.sub(base, 1, keep), "[%-%.]+$", "")
  return head .. suffix
end

local function rerun_name(old, mark)
  local base = string.gsub(old, "%-rerun%-[0-9]+$", "")
  if base == "" then
    base = old
  end
  return fit(base, "-rerun-" .. mark, max_name)
end

local spec = {}
for key, value in pairs(obj.spec) do
  if key ~= "suspend" then
    spec[key] = value
  end
end

local labels = {}
if obj.metadata.labels ~= nil then
  for key, value in pairs(obj.metadata.labels) do
    if key ~= "app.kubernetes.io/instance" then
      labels[key] = value
    end
  end
end
labels["trailboss.dev/rerun-of"] = obj.metadata.name

local run = {
  apiVersion = obj.apiVersion,
  kind = obj.kind,
  metadata = {
    name = rerun_name(obj.metadata.name, os.date("!%Y%m%d%H%M%S")),
    namespace = obj.metadata.namespace,
    labels = labels,
  },
  spec = spec,
}
return {{operation = "create", resource = run}}
