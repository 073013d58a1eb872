compare_data = {
    "ECM-Net": [86.85,],
    "ResNet34": [84.89,],
    "InceptionV3": [82.02,],
    "Xception": [85.43,],
    "MobileNetV2": [77.19,],
    "ShuffleNetV2_0.5X": [81.72,],
    "ShuffleNetV2": [85.42,],

    "+SE": [87.18,],
    "+CBAM": [87.56,],
    "+ECA": [87.13,],
    "+P2A": [88.25,],
}


"""
Num GPUs Available:  1

********************   Load => Net   ******************** -  -  -  - [state: Over]

Found 68894 images belonging to 5 classes.
********************   Load => TrainImageDataGenerator   ******************** -  -  -  - [state: Over]

Found 7000 images belonging to 5 classes.
********************   Load => ValidImageDataGenerator   ******************** -  -  -  - [state: Over]

Epoch 1/80000
2152/2152 [==============================] - 1449s 647ms/step - loss: 1.1636 - accuracy: 0.5338 - val_loss: 0.7980 - val_accuracy: 0.7185 - lr: 0.0010
Epoch 2/80000
2152/2152 [==============================] - 1320s 613ms/step - loss: 0.7079 - accuracy: 0.7561 - val_loss: 0.7705 - val_accuracy: 0.7387 - lr: 0.0010
Epoch 3/80000
2152/2152 [==============================] - 1314s 610ms/step - loss: 0.5555 - accuracy: 0.8108 - val_loss: 0.7552 - val_accuracy: 0.7539 - lr: 0.0010
Epoch 4/80000
2152/2152 [==============================] - 1317s 612ms/step - loss: 0.4873 - accuracy: 0.8343 - val_loss: 0.5860 - val_accuracy: 0.8049 - lr: 0.0010
Epoch 5/80000
2152/2152 [==============================] - 1319s 613ms/step - loss: 0.4280 - accuracy: 0.8537 - val_loss: 0.6370 - val_accuracy: 0.7969 - lr: 0.0010
Epoch 6/80000
2152/2152 [==============================] - 1317s 612ms/step - loss: 0.3843 - accuracy: 0.8696 - val_loss: 0.5945 - val_accuracy: 0.8175 - lr: 0.0010
Epoch 7/80000
2152/2152 [==============================] - 1314s 610ms/step - loss: 0.3483 - accuracy: 0.8827 - val_loss: 0.6022 - val_accuracy: 0.8174 - lr: 0.0010
Epoch 8/80000
2152/2152 [==============================] - 1313s 610ms/step - loss: 0.1783 - accuracy: 0.9429 - val_loss: 0.4615 - val_accuracy: 0.8634 - lr: 1.0000e-04
Epoch 9/80000
2152/2152 [==============================] - 1313s 610ms/step - loss: 0.1124 - accuracy: 0.9651 - val_loss: 0.4622 - val_accuracy: 0.8678 - lr: 1.0000e-04
Epoch 10/80000
2152/2152 [==============================] - 1310s 609ms/step - loss: 0.0815 - accuracy: 0.9759 - val_loss: 0.4766 - val_accuracy: 0.8681 - lr: 1.0000e-04
Epoch 11/80000
2152/2152 [==============================] - 1316s 611ms/step - loss: 0.0627 - accuracy: 0.9814 - val_loss: 0.5098 - val_accuracy: 0.8677 - lr: 1.0000e-04
Epoch 12/80000
2152/2152 [==============================] - 1311s 609ms/step - loss: 0.0428 - accuracy: 0.9892 - val_loss: 0.5094 - val_accuracy: 0.8698 - lr: 1.0000e-05
Epoch 13/80000
2152/2152 [==============================] - 1310s 608ms/step - loss: 0.0396 - accuracy: 0.9898 - val_loss: 0.5137 - val_accuracy: 0.8685 - lr: 1.0000e-05
"""

""" SE
Num GPUs Available:  1 

********************   Load => Net   ******************** -  -  -  - [state: Over]

Found 68894 images belonging to 5 classes.
********************   Load => TrainImageDataGenerator   ******************** -  -  -  - [state: Over]

Found 7000 images belonging to 5 classes.
********************   Load => ValidImageDataGenerator   ******************** -  -  -  - [state: Over]

Epoch 1/80000
2152/2152 [==============================] - 1407s 627ms/step - loss: 1.1256 - accuracy: 0.5502 - val_loss: 0.9199 - val_accuracy: 0.6750 - lr: 0.0010
Epoch 2/80000
2152/2152 [==============================] - 1314s 610ms/step - loss: 0.6790 - accuracy: 0.7663 - val_loss: 0.6074 - val_accuracy: 0.7901 - lr: 0.0010
Epoch 3/80000
2152/2152 [==============================] - 1336s 621ms/step - loss: 0.5437 - accuracy: 0.8137 - val_loss: 0.5772 - val_accuracy: 0.8048 - lr: 0.0010
Epoch 4/80000
2152/2152 [==============================] - 1314s 611ms/step - loss: 0.4647 - accuracy: 0.8406 - val_loss: 0.6433 - val_accuracy: 0.7886 - lr: 0.0010
Epoch 5/80000
2152/2152 [==============================] - 1302s 605ms/step - loss: 0.4157 - accuracy: 0.8591 - val_loss: 0.5249 - val_accuracy: 0.8293 - lr: 0.0010
Epoch 6/80000
2152/2152 [==============================] - 1303s 605ms/step - loss: 0.3758 - accuracy: 0.8720 - val_loss: 0.8180 - val_accuracy: 0.7767 - lr: 0.0010
Epoch 7/80000
2152/2152 [==============================] - 1309s 608ms/step - loss: 0.3455 - accuracy: 0.8842 - val_loss: 0.5740 - val_accuracy: 0.8261 - lr: 0.0010
Epoch 8/80000
2152/2152 [==============================] - 1311s 609ms/step - loss: 0.3144 - accuracy: 0.8935 - val_loss: 0.5711 - val_accuracy: 0.8248 - lr: 0.0010
Epoch 9/80000
2152/2152 [==============================] - 1309s 608ms/step - loss: 0.1607 - accuracy: 0.9476 - val_loss: 0.4626 - val_accuracy: 0.8673 - lr: 1.0000e-04
Epoch 10/80000
2152/2152 [==============================] - 1307s 607ms/step - loss: 0.0985 - accuracy: 0.9702 - val_loss: 0.4872 - val_accuracy: 0.8661 - lr: 1.0000e-04
Epoch 11/80000
2152/2152 [==============================] - 1309s 608ms/step - loss: 0.0666 - accuracy: 0.9802 - val_loss: 0.5159 - val_accuracy: 0.8696 - lr: 1.0000e-04
Epoch 12/80000
2152/2152 [==============================] - 1311s 609ms/step - loss: 0.0507 - accuracy: 0.9857 - val_loss: 0.5477 - val_accuracy: 0.8703 - lr: 1.0000e-04
Epoch 13/80000
2152/2152 [==============================] - 1310s 609ms/step - loss: 0.0334 - accuracy: 0.9918 - val_loss: 0.5399 - val_accuracy: 0.8713 - lr: 1.0000e-05
Epoch 14/80000
2152/2152 [==============================] - 1312s 609ms/step - loss: 0.0312 - accuracy: 0.9924 - val_loss: 0.5447 - val_accuracy: 0.8718 - lr: 1.0000e-05
"""

""" CBAM
Num GPUs Available:  1 

********************   Load => Net   ******************** -  -  -  - [state: Over]

Found 68894 images belonging to 5 classes.
********************   Load => TrainImageDataGenerator   ******************** -  -  -  - [state: Over]

Found 7000 images belonging to 5 classes.
********************   Load => ValidImageDataGenerator   ******************** -  -  -  - [state: Over]

Epoch 1/80000
2152/2152 [==============================] - 1487s 663ms/step - loss: 1.1668 - accuracy: 0.5329 - val_loss: 1.4172 - val_accuracy: 0.5258 - lr: 0.0010
Epoch 2/80000
2152/2152 [==============================] - 1359s 631ms/step - loss: 0.6716 - accuracy: 0.7665 - val_loss: 1.0704 - val_accuracy: 0.6732 - lr: 0.0010
Epoch 3/80000
2152/2152 [==============================] - 1397s 649ms/step - loss: 0.5223 - accuracy: 0.8202 - val_loss: 1.3706 - val_accuracy: 0.6485 - lr: 0.0010
Epoch 4/80000
2152/2152 [==============================] - 1498s 696ms/step - loss: 0.4449 - accuracy: 0.8481 - val_loss: 0.5904 - val_accuracy: 0.8112 - lr: 0.0010
Epoch 5/80000
2152/2152 [==============================] - 1403s 652ms/step - loss: 0.3902 - accuracy: 0.8674 - val_loss: 0.7110 - val_accuracy: 0.7980 - lr: 0.0010
Epoch 6/80000
2152/2152 [==============================] - 1343s 624ms/step - loss: 0.3513 - accuracy: 0.8806 - val_loss: 0.5782 - val_accuracy: 0.8178 - lr: 0.0010
Epoch 7/80000
2152/2152 [==============================] - 1371s 637ms/step - loss: 0.3164 - accuracy: 0.8927 - val_loss: 0.9887 - val_accuracy: 0.7360 - lr: 0.0010
Epoch 8/80000
2152/2152 [==============================] - 1360s 632ms/step - loss: 0.2884 - accuracy: 0.9035 - val_loss: 0.5662 - val_accuracy: 0.8370 - lr: 0.0010
Epoch 9/80000
2152/2152 [==============================] - 1342s 623ms/step - loss: 0.2697 - accuracy: 0.9093 - val_loss: 0.5799 - val_accuracy: 0.8251 - lr: 0.0010
Epoch 10/80000
2152/2152 [==============================] - 1342s 623ms/step - loss: 0.2524 - accuracy: 0.9162 - val_loss: 0.6140 - val_accuracy: 0.8253 - lr: 0.0010
Epoch 11/80000
2152/2152 [==============================] - 1340s 623ms/step - loss: 0.2308 - accuracy: 0.9236 - val_loss: 0.6187 - val_accuracy: 0.8278 - lr: 0.0010
Epoch 12/80000
2152/2152 [==============================] - 1340s 623ms/step - loss: 0.1197 - accuracy: 0.9619 - val_loss: 0.4857 - val_accuracy: 0.8726 - lr: 1.0000e-04
Epoch 13/80000
2152/2152 [==============================] - 1336s 621ms/step - loss: 0.0654 - accuracy: 0.9804 - val_loss: 0.5023 - val_accuracy: 0.8713 - lr: 1.0000e-04
Epoch 14/80000
2152/2152 [==============================] - 1335s 620ms/step - loss: 0.0420 - accuracy: 0.9884 - val_loss: 0.5287 - val_accuracy: 0.8734 - lr: 1.0000e-04
Epoch 15/80000
2152/2152 [==============================] - 1336s 621ms/step - loss: 0.0309 - accuracy: 0.9921 - val_loss: 0.5627 - val_accuracy: 0.8744 - lr: 1.0000e-04
Epoch 16/80000
2152/2152 [==============================] - 1339s 622ms/step - loss: 0.0198 - accuracy: 0.9953 - val_loss: 0.5613 - val_accuracy: 0.8763 - lr: 1.0000e-05
Epoch 17/80000
2152/2152 [==============================] - 1341s 623ms/step - loss: 0.0184 - accuracy: 0.9959 - val_loss: 0.5692 - val_accuracy: 0.8756 - lr: 1.0000e-05
"""

""" ECA
Num GPUs Available:  1 

********************   Load => Net   ******************** -  -  -  - [state: Over]

Found 68894 images belonging to 5 classes.
********************   Load => TrainImageDataGenerator   ******************** -  -  -  - [state: Over]

Found 7000 images belonging to 5 classes.
********************   Load => ValidImageDataGenerator   ******************** -  -  -  - [state: Over]

Epoch 1/80000
2152/2152 [==============================] - 1399s 625ms/step - loss: 1.1490 - accuracy: 0.5384 - val_loss: 1.0118 - val_accuracy: 0.6280 - lr: 0.0010
Epoch 2/80000
2152/2152 [==============================] - 1324s 615ms/step - loss: 0.6933 - accuracy: 0.7581 - val_loss: 0.8034 - val_accuracy: 0.7372 - lr: 0.0010
Epoch 3/80000
2152/2152 [==============================] - 1311s 609ms/step - loss: 0.5518 - accuracy: 0.8107 - val_loss: 0.5968 - val_accuracy: 0.7982 - lr: 0.0010
Epoch 4/80000
2152/2152 [==============================] - 1341s 623ms/step - loss: 0.4691 - accuracy: 0.8374 - val_loss: 0.6156 - val_accuracy: 0.7900 - lr: 0.0010
Epoch 5/80000
2152/2152 [==============================] - 1431s 665ms/step - loss: 0.4210 - accuracy: 0.8539 - val_loss: 0.8213 - val_accuracy: 0.7352 - lr: 0.0010
Epoch 6/80000
2152/2152 [==============================] - 1326s 616ms/step - loss: 0.3759 - accuracy: 0.8722 - val_loss: 0.5960 - val_accuracy: 0.8053 - lr: 0.0010
Epoch 7/80000
2152/2152 [==============================] - 1338s 621ms/step - loss: 0.3409 - accuracy: 0.8835 - val_loss: 1.3191 - val_accuracy: 0.7281 - lr: 0.0010
Epoch 8/80000
2152/2152 [==============================] - 1338s 622ms/step - loss: 0.3144 - accuracy: 0.8925 - val_loss: 0.5374 - val_accuracy: 0.8263 - lr: 0.0010
Epoch 9/80000
2152/2152 [==============================] - 1317s 612ms/step - loss: 0.2894 - accuracy: 0.9014 - val_loss: 0.6334 - val_accuracy: 0.8086 - lr: 0.0010
Epoch 10/80000
2152/2152 [==============================] - 1310s 609ms/step - loss: 0.2709 - accuracy: 0.9094 - val_loss: 0.5653 - val_accuracy: 0.8288 - lr: 0.0010
Epoch 11/80000
2152/2152 [==============================] - 1306s 607ms/step - loss: 0.2496 - accuracy: 0.9171 - val_loss: 0.6189 - val_accuracy: 0.8283 - lr: 0.0010
Epoch 12/80000
2152/2152 [==============================] - 1310s 609ms/step - loss: 0.1212 - accuracy: 0.9610 - val_loss: 0.4779 - val_accuracy: 0.8663 - lr: 1.0000e-04
Epoch 13/80000
2152/2152 [==============================] - 1312s 610ms/step - loss: 0.0656 - accuracy: 0.9810 - val_loss: 0.5154 - val_accuracy: 0.8697 - lr: 1.0000e-04
Epoch 14/80000
2152/2152 [==============================] - 1314s 611ms/step - loss: 0.0430 - accuracy: 0.9881 - val_loss: 0.5400 - val_accuracy: 0.8708 - lr: 1.0000e-04
Epoch 15/80000
2152/2152 [==============================] - 1313s 610ms/step - loss: 0.0302 - accuracy: 0.9922 - val_loss: 0.5722 - val_accuracy: 0.8703 - lr: 1.0000e-04
Epoch 16/80000
2152/2152 [==============================] - 1306s 607ms/step - loss: 0.0206 - accuracy: 0.9951 - val_loss: 0.5751 - val_accuracy: 0.8714 - lr: 1.0000e-05
Epoch 17/80000
2152/2152 [==============================] - 1302s 605ms/step - loss: 0.0187 - accuracy: 0.9957 - val_loss: 0.5808 - val_accuracy: 0.8713 - lr: 1.0000e-05
"""

"""
Num GPUs Available:  1 

********************   Load => Net   ******************** -  -  -  - [state: Over]

Found 68894 images belonging to 5 classes.
********************   Load => TrainImageDataGenerator   ******************** -  -  -  - [state: Over]

Found 7000 images belonging to 5 classes.
********************   Load => ValidImageDataGenerator   ******************** -  -  -  - [state: Over]

Epoch 1/80000
2152/2152 [==============================] - 1513s 679ms/step - loss: 1.0985 - accuracy: 0.5673 - val_loss: 0.9015 - val_accuracy: 0.6636 - lr: 0.0010
Epoch 2/80000
2152/2152 [==============================] - 1397s 649ms/step - loss: 0.6459 - accuracy: 0.7778 - val_loss: 0.5953 - val_accuracy: 0.7934 - lr: 0.0010
Epoch 3/80000
2152/2152 [==============================] - 1393s 647ms/step - loss: 0.5170 - accuracy: 0.8241 - val_loss: 0.6833 - val_accuracy: 0.7653 - lr: 0.0010
Epoch 4/80000
2152/2152 [==============================] - 1392s 647ms/step - loss: 0.4411 - accuracy: 0.8497 - val_loss: 0.7659 - val_accuracy: 0.7678 - lr: 0.0010
Epoch 5/80000
2152/2152 [==============================] - 1392s 647ms/step - loss: 0.3871 - accuracy: 0.8702 - val_loss: 1.0350 - val_accuracy: 0.7418 - lr: 0.0010
Epoch 6/80000
2152/2152 [==============================] - 1395s 648ms/step - loss: 0.2017 - accuracy: 0.9355 - val_loss: 0.4467 - val_accuracy: 0.8631 - lr: 1.0000e-04
Epoch 7/80000
2152/2152 [==============================] - 1397s 649ms/step - loss: 0.1289 - accuracy: 0.9606 - val_loss: 0.4641 - val_accuracy: 0.8650 - lr: 1.0000e-04
Epoch 8/80000
2152/2152 [==============================] - 1395s 648ms/step - loss: 0.0916 - accuracy: 0.9730 - val_loss: 0.5069 - val_accuracy: 0.8617 - lr: 1.0000e-04
Epoch 9/80000
2152/2152 [==============================] - 1394s 648ms/step - loss: 0.0675 - accuracy: 0.9806 - val_loss: 0.5217 - val_accuracy: 0.8685 - lr: 1.0000e-04
Epoch 10/80000
2152/2152 [==============================] - 1386s 644ms/step - loss: 0.0467 - accuracy: 0.9878 - val_loss: 0.5203 - val_accuracy: 0.8688 - lr: 1.0000e-05
Epoch 11/80000
2152/2152 [==============================] - 1393s 647ms/step - loss: 0.0424 - accuracy: 0.9893 - val_loss: 0.5227 - val_accuracy: 0.8698 - lr: 1.0000e-05
"""

"""
Num GPUs Available:  1 

********************   Load => Net   ******************** -  -  -  - [state: Over]

Found 68894 images belonging to 5 classes.
********************   Load => TrainImageDataGenerator   ******************** -  -  -  - [state: Over]

Found 7000 images belonging to 5 classes.
********************   Load => ValidImageDataGenerator   ******************** -  -  -  - [state: Over]

Epoch 1/80000
2152/2152 [==============================] - 1506s 675ms/step - loss: 1.1075 - accuracy: 0.5585 - val_loss: 0.7313 - val_accuracy: 0.7405 - lr: 0.0010
Epoch 2/80000
2152/2152 [==============================] - 1417s 658ms/step - loss: 0.6441 - accuracy: 0.7751 - val_loss: 0.8360 - val_accuracy: 0.7047 - lr: 0.0010
Epoch 3/80000
2152/2152 [==============================] - 1418s 659ms/step - loss: 0.5019 - accuracy: 0.8274 - val_loss: 0.6565 - val_accuracy: 0.7848 - lr: 0.0010
Epoch 4/80000
2152/2152 [==============================] - 1424s 661ms/step - loss: 0.4322 - accuracy: 0.8519 - val_loss: 0.5414 - val_accuracy: 0.8187 - lr: 0.0010
Epoch 5/80000
2152/2152 [==============================] - 1449s 673ms/step - loss: 0.3771 - accuracy: 0.8712 - val_loss: 0.5590 - val_accuracy: 0.8188 - lr: 0.0010
Epoch 6/80000
2152/2152 [==============================] - 1424s 662ms/step - loss: 0.3385 - accuracy: 0.8851 - val_loss: 0.5767 - val_accuracy: 0.8291 - lr: 0.0010
Epoch 7/80000
2152/2152 [==============================] - 1436s 667ms/step - loss: 0.3017 - accuracy: 0.8980 - val_loss: 0.9508 - val_accuracy: 0.7570 - lr: 0.0010
Epoch 8/80000
2152/2152 [==============================] - 1479s 687ms/step - loss: 0.1528 - accuracy: 0.9515 - val_loss: 0.4699 - val_accuracy: 0.8654 - lr: 1.0000e-04
Epoch 9/80000
2152/2152 [==============================] - 1477s 686ms/step - loss: 0.0945 - accuracy: 0.9721 - val_loss: 0.4834 - val_accuracy: 0.8698 - lr: 1.0000e-04
Epoch 10/80000
2152/2152 [==============================] - 1399s 650ms/step - loss: 0.0657 - accuracy: 0.9804 - val_loss: 0.5239 - val_accuracy: 0.8661 - lr: 1.0000e-04
Epoch 11/80000
2152/2152 [==============================] - 1401s 651ms/step - loss: 0.0507 - accuracy: 0.9853 - val_loss: 0.5514 - val_accuracy: 0.8657 - lr: 1.0000e-04
Epoch 12/80000
2152/2152 [==============================] - 1398s 650ms/step - loss: 0.0353 - accuracy: 0.9909 - val_loss: 0.5491 - val_accuracy: 0.8690 - lr: 1.0000e-05
Epoch 13/80000
2152/2152 [==============================] - 1395s 648ms/step - loss: 0.0313 - accuracy: 0.9922 - val_loss: 0.5538 - val_accuracy: 0.8697 - lr: 1.0000e-05
"""

"""
Num GPUs Available:  1 

********************   Load => Net   ******************** -  -  -  - [state: Over]

Found 68894 images belonging to 5 classes.
********************   Load => TrainImageDataGenerator   ******************** -  -  -  - [state: Over]

Found 7000 images belonging to 5 classes.
********************   Load => ValidImageDataGenerator   ******************** -  -  -  - [state: Over]

Epoch 1/80000
2152/2152 [==============================] - 1563s 698ms/step - loss: 1.0907 - accuracy: 0.5738 - val_loss: 1.2037 - val_accuracy: 0.5981 - lr: 0.0010
Epoch 2/80000
2152/2152 [==============================] - 1453s 675ms/step - loss: 0.6557 - accuracy: 0.7733 - val_loss: 0.6572 - val_accuracy: 0.7777 - lr: 0.0010
Epoch 3/80000
2152/2152 [==============================] - 1448s 673ms/step - loss: 0.5271 - accuracy: 0.8207 - val_loss: 0.8444 - val_accuracy: 0.7540 - lr: 0.0010
Epoch 4/80000
2152/2152 [==============================] - 1468s 682ms/step - loss: 0.4492 - accuracy: 0.8483 - val_loss: 0.5727 - val_accuracy: 0.8139 - lr: 0.0010
Epoch 5/80000
2152/2152 [==============================] - 1444s 671ms/step - loss: 0.3926 - accuracy: 0.8660 - val_loss: 0.5664 - val_accuracy: 0.8169 - lr: 0.0010
Epoch 6/80000
2152/2152 [==============================] - 1444s 671ms/step - loss: 0.3477 - accuracy: 0.8833 - val_loss: 0.7029 - val_accuracy: 0.7944 - lr: 0.0010
Epoch 7/80000
Epoch 11/80000
2152/2152 [==============================] - 1413s 657ms/step - loss: 0.2374 - accuracy: 0.9218 - val_loss: 0.8202 - val_accuracy: 0.7976 - lr: 0.0010
Epoch 12/80000
2152/2152 [==============================] - 1415s 657ms/step - loss: 0.1164 - accuracy: 0.9637 - val_loss: 0.5049 - val_accuracy: 0.8647 - lr: 1.0000e-04
Epoch 13/80000
2152/2152 [==============================] - 1413s 657ms/step - loss: 0.0640 - accuracy: 0.9816 - val_loss: 0.5261 - val_accuracy: 0.8664 - lr: 1.0000e-04
Epoch 14/80000
2152/2152 [==============================] - 1421s 660ms/step - loss: 0.0416 - accuracy: 0.9882 - val_loss: 0.5548 - val_accuracy: 0.8696 - lr: 1.0000e-04
Epoch 15/80000
2152/2152 [==============================] - 1421s 660ms/step - loss: 0.0305 - accuracy: 0.9914 - val_loss: 0.5834 - val_accuracy: 0.8681 - lr: 1.0000e-04
Epoch 16/80000
2152/2152 [==============================] - 1419s 659ms/step - loss: 0.0194 - accuracy: 0.9956 - val_loss: 0.5775 - val_accuracy: 0.8698 - lr: 1.0000e-05
Epoch 17/80000
2152/2152 [==============================] - 1414s 657ms/step - loss: 0.0181 - accuracy: 0.9963 - val_loss: 0.5818 - val_accuracy: 0.8690 - lr: 1.0000e-05
"""

"""
Num GPUs Available:  1 

********************   Load => Net   ******************** -  -  -  - [state: Over]

Found 68894 images belonging to 5 classes.
********************   Load => TrainImageDataGenerator   ******************** -  -  -  - [state: Over]

Found 7000 images belonging to 5 classes.
********************   Load => ValidImageDataGenerator   ******************** -  -  -  - [state: Over]

Epoch 1/80000
2152/2152 [==============================] - 1553s 692ms/step - loss: 1.1329 - accuracy: 0.5462 - val_loss: 0.8747 - val_accuracy: 0.6951 - lr: 0.0010
Epoch 2/80000
2152/2152 [==============================] - 1428s 663ms/step - loss: 0.6677 - accuracy: 0.7711 - val_loss: 0.6838 - val_accuracy: 0.7699 - lr: 0.0010
Epoch 3/80000
2152/2152 [==============================] - 1426s 662ms/step - loss: 0.5292 - accuracy: 0.8199 - val_loss: 0.5660 - val_accuracy: 0.8058 - lr: 0.0010
Epoch 4/80000
2152/2152 [==============================] - 1446s 672ms/step - loss: 0.4527 - accuracy: 0.8471 - val_loss: 0.5962 - val_accuracy: 0.8114 - lr: 0.0010
Epoch 5/80000
2152/2152 [==============================] - 1450s 674ms/step - loss: 0.3970 - accuracy: 0.8659 - val_loss: 0.6104 - val_accuracy: 0.8052 - lr: 0.0010
Epoch 6/80000
2152/2152 [==============================] - 1430s 664ms/step - loss: 0.3637 - accuracy: 0.8773 - val_loss: 0.5479 - val_accuracy: 0.8313 - lr: 0.0010
Epoch 7/80000
2152/2152 [==============================] - 1425s 662ms/step - loss: 0.3271 - accuracy: 0.8909 - val_loss: 0.5292 - val_accuracy: 0.8337 - lr: 0.0010
Epoch 8/80000
2152/2152 [==============================] - 1425s 662ms/step - loss: 0.2995 - accuracy: 0.9007 - val_loss: 0.5270 - val_accuracy: 0.8402 - lr: 0.0010
Epoch 9/80000
2152/2152 [==============================] - 1428s 664ms/step - loss: 0.2741 - accuracy: 0.9086 - val_loss: 0.8044 - val_accuracy: 0.7856 - lr: 0.0010
Epoch 10/80000
2152/2152 [==============================] - 1432s 665ms/step - loss: 0.2630 - accuracy: 0.9128 - val_loss: 0.5362 - val_accuracy: 0.8475 - lr: 0.0010
Epoch 11/80000
2152/2152 [==============================] - 1433s 666ms/step - loss: 0.2393 - accuracy: 0.9207 - val_loss: 0.5128 - val_accuracy: 0.8539 - lr: 0.0010
Epoch 12/80000
2152/2152 [==============================] - 1426s 663ms/step - loss: 0.2329 - accuracy: 0.9244 - val_loss: 0.5436 - val_accuracy: 0.8496 - lr: 0.0010
Epoch 13/80000
2152/2152 [==============================] - 1427s 663ms/step - loss: 0.2167 - accuracy: 0.9281 - val_loss: 0.5308 - val_accuracy: 0.8567 - lr: 0.0010
Epoch 14/80000
2152/2152 [==============================] - 1431s 665ms/step - loss: 0.2069 - accuracy: 0.9328 - val_loss: 0.5244 - val_accuracy: 0.8642 - lr: 0.0010
Epoch 15/80000
2152/2152 [==============================] - 1431s 665ms/step - loss: 0.0978 - accuracy: 0.9692 - val_loss: 0.4723 - val_accuracy: 0.8780 - lr: 1.0000e-04
Epoch 16/80000
2152/2152 [==============================] - 1433s 666ms/step - loss: 0.0533 - accuracy: 0.9839 - val_loss: 0.4926 - val_accuracy: 0.8784 - lr: 1.0000e-04
Epoch 17/80000
2152/2152 [==============================] - 1426s 662ms/step - loss: 0.0347 - accuracy: 0.9899 - val_loss: 0.5176 - val_accuracy: 0.8825 - lr: 1.0000e-04
Epoch 18/80000
2152/2152 [==============================] - 1426s 662ms/step - loss: 0.0247 - accuracy: 0.9937 - val_loss: 0.5491 - val_accuracy: 0.8797 - lr: 1.0000e-04
Epoch 19/80000
2152/2152 [==============================] - 1438s 668ms/step - loss: 0.0179 - accuracy: 0.9956 - val_loss: 0.5470 - val_accuracy: 0.8807 - lr: 1.0000e-05
Epoch 20/80000
2152/2152 [==============================] - 1427s 663ms/step - loss: 0.0158 - accuracy: 0.9963 - val_loss: 0.5476 - val_accuracy: 0.8825 - lr: 1.0000e-05
"""
