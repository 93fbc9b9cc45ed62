import AlexNetKit
print("alexnet")
