-- Release the finalizer: the operator lets the ModelVersion be deleted now, leaves
-- its registry entry as it is, and running model servers keep what they loaded.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["trailboss.dev/release-finalizer"] = "true"
return obj
