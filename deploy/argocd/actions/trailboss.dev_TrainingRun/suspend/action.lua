-- Suspend the TrainingRun: the operator suspends its Job, whose pods stop.
obj.spec.suspend = true
return obj
